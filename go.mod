module github.com/mmplug/mmplug

go 1.26.7

require github.com/mattermost/mattermost/server/public v0.4.4 // indirect
