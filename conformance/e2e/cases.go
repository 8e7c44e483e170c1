package main

import (
	"errors"
	"fmt"
	"strings"
)

// cases is the table, in the order they run: deploying first (what a user does first), then
// issue 16's hostile inputs side by side with the Go twin, then what a user does with the
// plugins (issue 12), then the cases that kill processes or restart the server.
func cases() []testCase {
	return []testCase{
		{"deploy-local", caseDeployLocal},
		{"deploy-token", caseDeployToken},
		{"enable-local", caseEnableLocal},

		{"nonutf8-header", caseNonUTF8Header},
		{"nonutf8-user-agent", caseNonUTF8UserAgent},
		{"nonutf8-accept-language", caseNonUTF8AcceptLanguage},
		{"nonutf8-query-escaped", caseNonUTF8QueryEscaped},
		{"nonutf8-query-raw", caseNonUTF8QueryRaw},
		{"nonutf8-filename", caseNonUTF8Filename},
		{"deep-props-dict-33", deepProps(dictNest, 33)},
		{"deep-props-dict-100", deepProps(dictNest, 100)},
		{"deep-props-dict-1000", deepProps(dictNest, 1000)},
		{"deep-props-list-49", deepProps(listNest, 49)},
		{"deep-props-list-100", deepProps(listNest, 100)},
		{"deep-props-alternating-20", deepProps(altNest, 20)},
		{"header-forge-wsgi", caseHeaderForgeWSGI},
		{"header-forge-asgi", caseHeaderForgeASGI},
		{"header-forge-hello", caseHeaderForgeHello},
		{"path-decoded", casePathDecoded},
		{"command-separators", caseCommandSeparators},
		{"campaign", caseCampaign},

		{"flask-bundle-starts", bundleStarts(func(e *env) *plugin { return e.flask })},
		{"fastapi-bundle-starts", bundleStarts(func(e *env) *plugin { return e.fastapi })},
		{"post-rejected", casePostRejected},
		{"post-props-types", casePostPropsTypes},
		{"command-hello", caseCommandHello},
		{"command-hello-fail-message", caseCommandHelloFail},
		{"route-get", caseRouteGet},
		{"route-post-5mib", caseRoutePost5MiB},
		{"kv-binary", caseKVBinary},
		{"sse-fastapi-events", caseSSEFastAPI},
		{"stream-flask-countdown", caseStreamFlask},
		{"log-lines-readable", caseLogLines},
		{"moderation", caseModeration},
		{"oauth-connect", caseOAuthConnect},
		{"remind", caseRemind},
		{"config-set-get", caseConfig},
		{"scaffold-deploys", caseScaffold},
		{"flood-deep-lists", caseFlood},
		{"flood-flat-numbers", caseFloodFlatNumbers},
		{"flood-api-calls", caseFloodAPICalls},
		{"sync-handler-threads", caseSyncHandlerThreads},
		{"token-not-in-environ", caseTokenEnviron},
		{"disable-enable", caseDisableEnable},
		{"kill-python", caseKillPython},
		{"kill-bridge", caseKillBridge},
		{"server-restart", caseServerRestart},
	}
}

// sideBySide runs probe against the Go twin, then against the Python plugin, each the only
// one of the pair enabled and freshly started. probe describes what the server or the plugin
// did ("answered 200", "rejected the post"); the case passes when Python's description is Go's
// and the Python plugin still does its job afterwards (alive). A Go twin that misbehaves is a
// broken test, reported as such.
func sideBySide(e *env, probe func(p *plugin) (string, error)) error {
	if err := e.solo(e.hellogo); err != nil {
		return fmt.Errorf("starting the Go twin alone: %w", err)
	}
	goAns, err := probe(e.hellogo)
	if err != nil {
		return fmt.Errorf("the Go twin (a broken test): %w", err)
	}
	if err := e.alive(e.hellogo); err != nil {
		return fmt.Errorf("the Go twin afterwards (a broken test): %w", err)
	}
	if err := e.solo(e.hello); err != nil {
		return fmt.Errorf("starting the Python plugin alone: %w", err)
	}
	pyAns, err := probe(e.hello)
	var problems []string
	if err != nil {
		problems = append(problems, "Python: "+err.Error())
	} else if pyAns != goAns {
		problems = append(problems, fmt.Sprintf("Python: %s; Go: %s", pyAns, goAns))
	}
	if err := e.alive(e.hello); err != nil {
		problems = append(problems, "afterwards "+err.Error())
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
