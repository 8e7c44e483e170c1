package main

// The wire facts below cannot be read from Go types: they are the behaviour of the hand-written
// RPC glue in the plugin package (client_rpc.go). Extraction fails when a method or field is
// irregular and not described here, so a new special case in a future module version is caught.

type fieldRole struct {
	role  string
	of    string
	index int // Go param/result index carried, -1 for none
	note  string
}

// fieldRoles is keyed by "<net/rpc method>.<Z_ field name>".
var fieldRoles = map[string]fieldRole{
	// Hooks.OnActivate(): the server passes the ids of two broker streams it Accepts.
	"OnActivate.APIMuxId": {"stream", "", -1,
		"server Accepts; plugin Dials at once and uses it as a net/rpc client of the server's plugin.API (service \"Plugin\")"},
	"OnActivate.DriverMuxId": {"stream", "", -1,
		"server Accepts; plugin may Dial it as a net/rpc client of the database driver RPC server"},

	// API.LoadPluginConfiguration(dest any) error: the plugin side unmarshals; the wire has the JSON.
	"LoadPluginConfiguration.A": {"other", "dest", -1,
		"the plugin configuration as JSON bytes; the Go client json.Unmarshals it into dest"},

	// Hooks.ServeHTTP / ServeMetrics(c, w, r).
	"ServeHTTP.ResponseWriterStream": {"stream", "w", -1,
		"server Accepts; plugin Dials and calls Plugin.Header/SyncHeader/WriteHeader/Write/Flush on it (net/rpc, server is the RPC server)"},
	"ServeHTTP.Request": {"request", "r", 2,
		"the request line and headers; Body is always nil on the wire"},
	"ServeHTTP.Context": {"param", "c", 0, ""},
	"ServeHTTP.RequestBodyStream": {"stream", "r", -1,
		"0 when the request has no body; else server Accepts and serves the body with the io-reader protocol, plugin Dials"},
	"ServeMetrics.ResponseWriterStream": {"stream", "w", -1,
		"as ServeHTTP.ResponseWriterStream"},
	"ServeMetrics.Request":           {"request", "r", 2, "as ServeHTTP.Request"},
	"ServeMetrics.Context":           {"param", "c", 0, ""},
	"ServeMetrics.RequestBodyStream": {"stream", "r", -1, "as ServeHTTP.RequestBodyStream"},

	// Hooks.FileWillBeUploaded(c, info, file io.Reader, output io.Writer).
	"FileWillBeUploaded.UploadedFileStream": {"stream", "file", 2,
		"server Accepts and serves the upload with the io-reader protocol; plugin Dials"},
	"FileWillBeUploaded.ReplacementFileStream": {"stream", "output", 3,
		"server Accepts and reads raw bytes until EOF; plugin Dials, writes the replacement (or nothing) and closes; the server blocks on it after the call returns, so it must always be dialed and closed"},

	// API.InstallPlugin(file io.Reader, replace bool) and API.UploadData(us, rd io.Reader),
	// API.ReceiveSharedChannelAttachmentSyncMsg(remoteID, channelID, fi, data io.Reader).
	"InstallPlugin.PluginStreamID": {"stream", "file", 0,
		"plugin allocates the id and Accepts; server Dials and reads it with the io-reader protocol"},
	"UploadData.PluginStreamID": {"stream", "rd", 1,
		"plugin allocates the id and Accepts; server Dials and reads it with the io-reader protocol"},
	"ReceiveSharedChannelAttachmentSyncMsg.DataStreamID": {"stream", "data", 3,
		"plugin allocates the id and Accepts; server Dials and reads it with the io-reader protocol"},

	// API.PluginHTTP(*http.Request) *http.Response, buffered variant.
	"PluginHTTP.Request": {"request", "request", 0,
		"the request line and headers of the inter-plugin request; Body nil"},
	"PluginHTTP.RequestBody": {"body", "request", 0,
		"the whole request body"},
	"PluginHTTP.Response": {"result", "", 0,
		"gob-encoded *http.Response (Body nil); only Status/StatusCode/Header etc. are meaningful"},
	"PluginHTTP.ResponseBody": {"body", "response", 0,
		"the whole response body"},
	// Streaming variant PluginHTTPStream, tried first by the Go client.
	"PluginHTTPStream.ResponseBodyStream": {"stream", "response", -1,
		"plugin allocates the id and Accepts; server Dials and writes the raw response body, then closes"},
	"PluginHTTPStream.Request": {"request", "request", 0,
		"the request line and headers; Body nil"},
	"PluginHTTPStream.RequestBodyStream": {"stream", "request", 0,
		"0 when there is no body; else plugin allocates the id, Accepts and serves the body with the io-reader protocol"},
	"PluginHTTPStream.StatusCode": {"other", "response", -1, "the response status code"},
	"PluginHTTPStream.Header":     {"other", "response", -1, "the response headers"},
}

// wireNotes explains, per Go method, how an irregular call is mapped.
var wireNotes = map[string]string{
	"LoadPluginConfiguration":               "Args struct Z_LoadPluginConfigurationArgsArgs is empty (note the doubled name); the reply Z_LoadPluginConfigurationArgsReturns{A []byte} is the configuration JSON. The Go `dest` parameter and `error` result never travel.",
	"Implemented":                           "Args are struct{}{}; the reply is a bare []string of Go hook method names (not a Z_ struct). The server ignores unknown names.",
	"OnActivate":                            "Args carry two mux-broker stream ids instead of parameters: APIMuxId (the plugin.API RPC server) and DriverMuxId (the database driver RPC server).",
	"ServeHTTP":                             "w and r travel as broker streams: Request is an HTTPRequestSubset, the body is served on RequestBodyStream and the response is written through net/rpc calls on ResponseWriterStream. The reply is struct{}, sent only after all writes were acknowledged.",
	"ServeMetrics":                          "Same mechanics as ServeHTTP (metrics listener, empty Context).",
	"FileWillBeUploaded":                    "file and output travel as broker streams (UploadedFileStream, ReplacementFileStream); both must be dialed.",
	"InstallPlugin":                         "file travels on a plugin-allocated broker stream (PluginStreamID) that the server reads with the io-reader protocol.",
	"UploadData":                            "rd travels on a plugin-allocated broker stream (PluginStreamID) that the server reads with the io-reader protocol.",
	"ReceiveSharedChannelAttachmentSyncMsg": "data travels on a plugin-allocated broker stream (DataStreamID) that the server reads with the io-reader protocol.",
	"PluginHTTP":                            "Two wire forms: Plugin.PluginHTTPStream (request body and response body on broker streams, reply {StatusCode, Header}) is tried first; on `rpc: can't find method Plugin.PluginHTTPStream` the Go client falls back to the buffered Plugin.PluginHTTP{Request, RequestBody} → {Response *http.Response, ResponseBody}.",
}
