package main

import (
	"bytes"
	"encoding/gob"
	"encoding/hex"
	"fmt"
	"net/rpc"
)

// printGolden prints the gob bytes Go's net/rpc writes for a few headers, one hex line per
// stream: crates/goplugin's header unit tests embed them.
func printGolden() {
	var req bytes.Buffer
	enc := gob.NewEncoder(&req)
	must(enc.Encode(rpc.Request{ServiceMethod: "Plugin.Echo", Seq: 0}))
	must(enc.Encode(rpc.Request{ServiceMethod: "Control.Ping", Seq: 1}))
	fmt.Println("request-stream", hex.EncodeToString(req.Bytes()))

	var resp bytes.Buffer
	enc = gob.NewEncoder(&resp)
	must(enc.Encode(rpc.Response{ServiceMethod: "Plugin.Fail", Seq: 2, Error: "boom"}))
	must(enc.Encode(struct{}{}))
	must(enc.Encode(rpc.Response{ServiceMethod: "Dispenser.Dispense", Seq: 300}))
	must(enc.Encode(uint32(1)))
	fmt.Println("response-stream", hex.EncodeToString(resp.Bytes()))
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}
