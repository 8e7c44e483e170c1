// Command unimplemented is a test plugin for the harness itself: its OnActivate calls an API
// method the in-memory server does not implement, to prove that such a call fails the case
// cleanly instead of crashing the harness.
package main

import (
	"fmt"

	"github.com/mattermost/mattermost/server/public/plugin"
)

type probe struct {
	plugin.MattermostPlugin
}

func (p *probe) OnActivate() error {
	if _, appErr := p.API.GetTeams(); appErr != nil {
		return fmt.Errorf("GetTeams answered: %w", appErr)
	}
	return fmt.Errorf("GetTeams answered without an error")
}

func main() {
	plugin.ClientMain(&probe{})
}
