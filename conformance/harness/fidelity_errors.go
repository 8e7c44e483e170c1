package main

// The error direction of the fidelity sweep (same activation, after the value sweep).
//
// API method M with an error result (*model.AppError or error): the plugin asks for the plan
// (KVGet "mmplug-fidelity/plan/api-errors": the names of those methods, as this server's
// plugin.API has them) and then calls each one a second time, through the SDK's typed client
// method. From that moment the recording API answers a planned method's call with zero results
// and the fully filled AppError of apiErrorFor; the plugin reports the PluginAPIError it caught
// (KVSet "mmplug-fidelity/api-error/M") and Go compares every field, and the subclass, with what
// it answered.
//
// Hook H with an error result (other than OnActivate, the activation itself, and Implemented,
// which the SDK answers): the harness calls H a second time while KVGet
// "mmplug-fidelity/mode/hook/H" answers "raise"; the handler then raises the PluginAPIError of
// the shared rule (ruleAppError, implemented again in testdata/fidelity/plugin.py) and Go
// compares what the hook returned with its own copy of the rule.

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
)

const (
	errorPlanKey   = "plan/api-errors"
	hookModePrefix = "mode/hook/"
	hookModeRaise  = "raise"
)

// errorStatuses are real HTTP statuses, so the SDK picks a subclass where it has one (all but
// 500, 502 and 504, which stay the base class).
var errorStatuses = []int{400, 401, 403, 404, 409, 413, 429, 500, 501, 502, 503, 504}

// sdkErrorClass is the SDK's documented PluginAPIError subclass per status code
// (python/src/mattermost_plugin/errors.py); any other status raises PluginAPIError itself.
var sdkErrorClass = map[int]string{
	400: "BadRequestError",
	401: "UnauthorizedError",
	403: "PermissionDeniedError",
	404: "NotFoundError",
	409: "ConflictError",
	413: "PayloadTooLargeError",
	429: "TooManyRequestsError",
	501: "NotImplementedAPIError",
	503: "ServiceUnavailableError",
}

func sdkClassFor(status int) string {
	if c, ok := sdkErrorClass[status]; ok {
		return c
	}
	return "PluginAPIError"
}

// ruleAppError is the error of the rule at prefix: every exported AppError field set, each
// string naming its own field, the status picked from errorStatuses by the prefix's hash.
func ruleAppError(prefix string) *model.AppError {
	return &model.AppError{
		Id:              prefix + ".id",
		Message:         prefix + ".message",
		DetailedError:   prefix + ".detailed_error",
		RequestId:       prefix + ".request_id",
		StatusCode:      errorStatuses[pathHash(prefix)%uint64(len(errorStatuses))],
		Where:           prefix + ".where",
		SkipTranslation: true,
	}
}

func apiErrorFor(method string) *model.AppError { return ruleAppError("api-error." + method) }
func hookErrorFor(hook string) *model.AppError  { return ruleAppError("hook-error." + hook) }

// raisedError is the plugin's account of the PluginAPIError it caught (errors.py field names).
type raisedError struct {
	Type            string   `json:"type"`
	Bases           []string `json:"bases"` // the exception's class and its bases, most derived first
	ID              string   `json:"id"`
	Message         string   `json:"message"`
	DetailedError   string   `json:"detailed_error"`
	RequestID       string   `json:"request_id"`
	StatusCode      int      `json:"status_code"`
	Where           string   `json:"where"`
	SkipTranslation bool     `json:"skip_translation"`
	Kind            int      `json:"kind"`
	Code            int      `json:"code"`
	Method          string   `json:"method"`
	Text            string   `json:"text"` // str(exception)
}

// hasErrorResult reports whether ft's last result is error or *model.AppError.
func hasErrorResult(ft reflect.Type) bool {
	return ft.NumOut() > 0 && isErrorResult(ft, ft.NumOut()-1)
}

// errorPlan lists the API methods of this server whose error direction the plugin exercises:
// every unary method with an error result. A method of the contract this server lacks is not
// in it (it keeps its UNIMPLEMENTED case).
func errorPlan() []string {
	var names []string
	for i := range apiInterface.NumMethod() {
		m := apiInterface.Method(i)
		if streamingReason(m.Type) == "" && hasErrorResult(m.Type) {
			names = append(names, m.Name)
		}
	}
	return names
}

// control answers the KVGet keys of the fidelity protocol (prefix already removed).
func (f *fidelityAPI) control(key string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case key == errorPlanKey:
		plan := errorPlan()
		raw, err := json.Marshal(plan)
		if err != nil {
			f.rec.fail("fidelity: encoding the error plan: %v", err)
			return nil
		}
		f.planned = map[string]bool{}
		for _, n := range plan {
			f.planned[n] = true
		}
		return raw
	case strings.HasPrefix(key, hookModePrefix):
		hook := strings.TrimPrefix(key, hookModePrefix)
		if hook == f.raiseHook {
			f.modeAsked[hook] = true
			return []byte(hookModeRaise)
		}
		return nil
	}
	f.rec.fail("fidelity: unknown control key %q", key)
	return nil
}

// errorAnswer, while the plan is active, records a planned method's call and returns the
// results it answers (zero values and the method's AppError); ok is false for any other call.
func (f *fidelityAPI) errorAnswer(name string, ft reflect.Type, flat map[string]string) ([]any, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.planned[name] {
		return nil, false
	}
	f.errCalls[name] = append(f.errCalls[name], flat)
	out := make([]any, ft.NumOut())
	for j := range ft.NumOut() {
		out[j] = reflect.Zero(ft.Out(j)).Interface()
	}
	out[len(out)-1] = apiErrorFor(name) // as *model.AppError or in an error: the same value
	return out, true
}

// reshapedAPIError is what the plugin must see for a method whose error the server does not
// send back as the method's result, with the reason; nil for every other method.
func reshapedAPIError(name string, sent *model.AppError) (*raisedError, string) {
	if name != "LoadPluginConfiguration" {
		return nil, ""
	}
	// The server's hand-written apiRPCServer.LoadPluginConfiguration returns the API's error as
	// the net/rpc reply error: only its text travels (a Go plugin's client even drops it). The
	// bridge answers a net/rpc error as gRPC INTERNAL "<Method>: <text>" (docs/internals.md §5)
	// and the SDK raises its transport error, status 500, for that.
	text := fmt.Sprintf("%s: %s", name, sent.Error())
	return &raisedError{
			Type:          "PluginAPIError",
			ID:            "mmplug.client.transport",
			Message:       fmt.Sprintf("PluginAPI.%s failed in transport: %s", name, text),
			DetailedError: "grpc status INTERNAL",
			StatusCode:    500,
			Where:         name,
			Method:        name,
			// An SDK-made error: its id is in no server's i18n bundle, so it is shown as is.
			SkipTranslation: true,
		}, "the server sends only the error's text (net/rpc reply error), so the SDK raises its transport " +
			"error carrying that text; id, request_id, status_code and skip_translation of the AppError " +
			"cannot reach the plugin"
}

// apiErrorCases judges the error call of every planned method.
func apiErrorCases(api *fidelityAPI) []*fidelityCase {
	var cases []*fidelityCase
	for _, name := range errorPlan() {
		m, _ := apiInterface.MethodByName(name)
		c := &fidelityCase{name: "api-error/" + name}
		cases = append(cases, c)
		api.mu.Lock()
		asked := api.planned != nil
		calls := api.errCalls[name]
		rep, hasRep := api.reports["api-error/"+name]
		api.mu.Unlock()
		if !asked {
			c.failf("the plugin never asked for the error plan")
			continue
		}
		if !hasRep {
			c.failf("the plugin sent no report (it did not make the error call)")
		}
		if rep.Error != "" {
			c.failf("the error call in the plugin: %s", rep.Error)
		}
		if len(calls) == 0 {
			c.failf("the error call never reached the server's API")
			continue
		}
		c.bridged = true
		if len(calls) > 1 {
			c.failf("the server's API received %d error calls, want 1", len(calls))
		}
		// The typed client built the request from Python values: it must carry the same
		// arguments as the raw request of the value sweep.
		var fl filler
		wantArgs := map[string]string{}
		if name != "LoadPluginConfiguration" {
			_, wantArgs = fillParams(name, m.Type, &fl)
		}
		c.diff("args (typed client, Python→Go)", calls[0], asDoubles(wantArgs))
		if rep.Raised == nil {
			continue
		}
		sent := apiErrorFor(name)
		want := &raisedError{
			Type: sdkClassFor(sent.StatusCode), ID: sent.Id, Message: sent.Message,
			DetailedError: sent.DetailedError, RequestID: sent.RequestId, StatusCode: sent.StatusCode,
			Where: sent.Where, SkipTranslation: sent.SkipTranslation, Method: name,
		}
		if w, why := reshapedAPIError(name, sent); w != nil {
			want = w
			c.limits = append(c.limits, "server reshapes the error: "+why)
		}
		c.leaves += compareRaised(c, rep.Raised, want)
	}
	return cases
}

// compareRaised compares every field of the caught exception with want and checks the class is
// a PluginAPIError of the subclass the status calls for; it returns the number of fields compared.
func compareRaised(c *fidelityCase, got, want *raisedError) int {
	type pair struct {
		field     string
		got, want any
	}
	pairs := []pair{
		{"type", got.Type, want.Type},
		{"id", got.ID, want.ID},
		{"message", got.Message, want.Message},
		{"detailed_error", got.DetailedError, want.DetailedError},
		{"request_id", got.RequestID, want.RequestID},
		{"status_code", got.StatusCode, want.StatusCode},
		{"where", got.Where, want.Where},
		{"skip_translation", got.SkipTranslation, want.SkipTranslation},
		{"kind", got.Kind, 0}, // ErrorKind.APP_ERROR
		{"code", got.Code, 0},
		{"method", got.Method, want.Method},
	}
	for _, p := range pairs {
		if p.got != p.want {
			c.failf("PluginAPIError.%s: got %#v, want %#v", p.field, p.got, p.want)
		}
	}
	if len(got.Bases) == 0 || got.Bases[0] != got.Type || !slices.Contains(got.Bases, "PluginAPIError") {
		c.failf("the exception's classes %v are not %s deriving from PluginAPIError", got.Bases, got.Type)
	}
	return len(pairs)
}

// hookErrorCandidate reports whether the error direction of hook m is driven here.
func hookErrorCandidate(m reflect.Method) bool {
	return hasErrorResult(m.Type) && streamingReason(m.Type) == "" && m.Name != "OnActivate" && m.Name != "Implemented"
}

// fidelityHookError calls hook m while its handler is told to raise, and compares what the hook
// returns with the rule's error.
func fidelityHookError(hv, plain reflect.Value, m reflect.Method, api *fidelityAPI, c *fidelityCase) {
	api.mu.Lock()
	api.raiseHook = m.Name
	api.mu.Unlock()
	defer func() {
		api.mu.Lock()
		api.raiseHook = ""
		api.mu.Unlock()
	}()
	var fl filler
	args, _ := fillParams(m.Name, m.Type, &fl)
	var outs []reflect.Value
	if fn := hv.MethodByName(m.Name + "WithRPCErr"); fn.IsValid() {
		outs = fn.Call(args)
		if rpcErr := outs[len(outs)-1]; !rpcErr.IsNil() {
			c.failf("RPC error: %v", rpcErr.Interface())
			return
		}
		outs = outs[:len(outs)-1]
	} else {
		outs = plain.MethodByName(m.Name).Call(args)
	}
	c.bridged = true
	api.mu.Lock()
	asked := api.modeAsked[m.Name]
	api.mu.Unlock()
	if !asked {
		c.failf("the handler never asked whether to raise (KVGet %s%s%s)", fidelityReportPrefix, hookModePrefix, m.Name)
	}
	// A failed hook's other results are zero: the SDK answers a fresh response holding only the
	// error.
	others := map[string]string{}
	for j, o := range outs[:len(outs)-1] {
		flatten(o, fmt.Sprintf("%s.out.%d", m.Name, j+2), others)
	}
	for _, d := range leafDiff(others, map[string]string{}) {
		c.failf("results beside the error: %s", d)
	}
	want := hookErrorFor(m.Name)
	errOut := outs[len(outs)-1]
	if errOut.IsNil() {
		c.failf("the hook returned no error, want %s %q", reflect.TypeOf(want), want.Error())
		return
	}
	got, ok := errOut.Interface().(*model.AppError)
	if !ok {
		c.failf("the hook returned %T %q, want *model.AppError %q", errOut.Interface(), errOut.Interface(), want.Error())
		return
	}
	if got.Error() != want.Error() {
		c.failf("Error() = %q, want %q", got.Error(), want.Error())
	}
	c.leaves += compareAppError(c, got, want) + 1
}

// compareAppError compares every exported field; it returns the number compared.
func compareAppError(c *fidelityCase, got, want *model.AppError) int {
	gv, wv := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	n := 0
	for _, i := range wireFields(gv.Type()) {
		n++
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if g != w {
			c.failf("AppError.%s: got %#v, want %#v", gv.Type().Field(i).Name, g, w)
		}
	}
	return n
}
