package main

// The in-memory server's users, teams, channels, bots, ephemeral posts and the KV methods
// beyond get/set: what plugins built on the SDK's helpers (ensure_bot, the KV store, slash
// commands that look up their caller) call at activation and on a post, so that -dev and
// -smoke can run them. Each answers as the server does for the same request, including its
// error ids and statuses for what is missing.

import (
	"bytes"
	"net/http"
	"slices"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

// botIDKey is where the server's EnsureBotUser remembers the plugin's bot (per plugin KV).
const botIDKey = "mmi_botid"

// world is the state behind these methods; memAPI embeds it so the methods below read as the
// server's own.
type world struct {
	teams     map[string]*model.Team
	channels  map[string]*model.Channel
	bots      map[string]*model.Bot // by bot user id
	kvExpiry  map[string]time.Time
	ephemeral []*model.Post
}

// seedWorld gives the server what a fresh test install has: the harness user (a system admin),
// a team it belongs to, and the channel the cases post in.
func (m *memAPI) seedWorld() {
	m.teams = map[string]*model.Team{harnessTeamID: {Id: harnessTeamID, Name: "harness", DisplayName: "Harness", Type: model.TeamOpen}}
	m.channels = map[string]*model.Channel{harnessChannelID: {Id: harnessChannelID, TeamId: harnessTeamID, Name: "town-square", DisplayName: "Town Square", Type: model.ChannelTypeOpen}}
	m.bots = map[string]*model.Bot{}
	m.kvExpiry = map[string]time.Time{}
	m.users[harnessUserID] = &model.User{Id: harnessUserID, Username: "harness", Email: "harness@example.com", Roles: "system_user system_admin"}
}

func notFound(id, where string) *model.AppError {
	return &model.AppError{Id: id, Message: "not found", StatusCode: http.StatusNotFound, Where: "MemAPI." + where}
}

func (m *memAPI) GetUserByUsername(name string) (*model.User, *model.AppError) {
	defer m.guard("GetUserByUsername")
	m.rec.call("GetUserByUsername")
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range m.users {
		if u.Username == name {
			return u, nil
		}
	}
	return nil, notFound("app.user.get_by_username.app_error", "GetUserByUsername")
}

func (m *memAPI) GetUsersByIds(userIDs []string) ([]*model.User, *model.AppError) {
	defer m.guard("GetUsersByIds")
	m.rec.call("GetUsersByIds")
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []*model.User{}
	for _, id := range userIDs {
		if u, ok := m.users[id]; ok {
			out = append(out, u)
		}
	}
	return out, nil
}

func (m *memAPI) GetTeam(teamID string) (*model.Team, *model.AppError) {
	defer m.guard("GetTeam")
	m.rec.call("GetTeam")
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.teams[teamID]; ok {
		return t, nil
	}
	return nil, notFound("app.team.get.find.app_error", "GetTeam")
}

func (m *memAPI) GetTeamByName(name string) (*model.Team, *model.AppError) {
	defer m.guard("GetTeamByName")
	m.rec.call("GetTeamByName")
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.teams {
		if t.Name == name {
			return t, nil
		}
	}
	return nil, notFound("app.team.get_by_name.missing.app_error", "GetTeamByName")
}

func (m *memAPI) GetTeamMember(teamID, userID string) (*model.TeamMember, *model.AppError) {
	defer m.guard("GetTeamMember")
	m.rec.call("GetTeamMember")
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.teams[teamID]; ok {
		if u, ok := m.users[userID]; ok && !u.IsBot {
			return &model.TeamMember{TeamId: teamID, UserId: userID, Roles: "team_user", SchemeUser: true}, nil
		}
	}
	return nil, notFound("app.team.get_member.missing.app_error", "GetTeamMember")
}

func (m *memAPI) GetChannel(channelID string) (*model.Channel, *model.AppError) {
	defer m.guard("GetChannel")
	m.rec.call("GetChannel")
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.channels[channelID]; ok {
		return c, nil
	}
	return nil, notFound("app.channel.get.existing.app_error", "GetChannel")
}

func (m *memAPI) GetChannelByName(teamID, name string, includeDeleted bool) (*model.Channel, *model.AppError) {
	defer m.guard("GetChannelByName")
	m.rec.call("GetChannelByName")
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.channels {
		if c.TeamId == teamID && c.Name == name && (includeDeleted || c.DeleteAt == 0) {
			return c, nil
		}
	}
	return nil, notFound("app.channel.get_by_name.missing.app_error", "GetChannelByName")
}

func (m *memAPI) SendEphemeralPost(userID string, post *model.Post) *model.Post {
	defer m.guard("SendEphemeralPost")
	m.rec.call("SendEphemeralPost")
	if post == nil {
		return nil
	}
	p := post.Clone()
	if p.Id == "" {
		p.Id = model.NewId()
	}
	p.UserId = userID
	p.CreateAt = model.GetMillis()
	p.Type = model.PostTypeEphemeral
	m.mu.Lock()
	m.ephemeral = append(m.ephemeral, p)
	m.mu.Unlock()
	return p.Clone()
}

func (m *memAPI) SetProfileImage(userID string, data []byte) *model.AppError {
	defer m.guard("SetProfileImage")
	m.rec.call("SetProfileImage")
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[userID]; !ok {
		return notFound("app.user.missing_account.const", "SetProfileImage")
	}
	if len(data) == 0 {
		return &model.AppError{Id: "api.user.upload_profile_user.open.app_error", Message: "empty image", StatusCode: http.StatusBadRequest, Where: "MemAPI.SetProfileImage"}
	}
	return nil
}

// ---- bots ----

func (m *memAPI) CreateBot(bot *model.Bot) (*model.Bot, *model.AppError) {
	defer m.guard("CreateBot")
	m.rec.call("CreateBot")
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.createBotLocked(bot)
}

func (m *memAPI) createBotLocked(bot *model.Bot) (*model.Bot, *model.AppError) {
	if bot == nil || bot.Username == "" {
		return nil, &model.AppError{Id: "model.bot.is_valid.username.app_error", Message: "invalid username", StatusCode: http.StatusBadRequest, Where: "MemAPI.CreateBot"}
	}
	for _, u := range m.users {
		if u.Username == bot.Username {
			return nil, &model.AppError{Id: "app.user.save.username_exists.app_error", Message: "an account with that username already exists", StatusCode: http.StatusBadRequest, Where: "MemAPI.CreateBot"}
		}
	}
	b := bot.Clone()
	b.UserId = model.NewId()
	b.CreateAt = model.GetMillis()
	b.UpdateAt = b.CreateAt
	m.users[b.UserId] = &model.User{Id: b.UserId, Username: b.Username, FirstName: b.DisplayName, IsBot: true, Roles: "system_user"}
	m.bots[b.UserId] = b
	return b.Clone(), nil
}

func (m *memAPI) GetBot(botUserID string, includeDeleted bool) (*model.Bot, *model.AppError) {
	defer m.guard("GetBot")
	m.rec.call("GetBot")
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.bots[botUserID]; ok && (includeDeleted || b.DeleteAt == 0) {
		return b.Clone(), nil
	}
	return nil, notFound("store.sql_bot.get.missing.app_error", "GetBot")
}

func (m *memAPI) PatchBot(botUserID string, patch *model.BotPatch) (*model.Bot, *model.AppError) {
	defer m.guard("PatchBot")
	m.rec.call("PatchBot")
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.bots[botUserID]
	if !ok {
		return nil, notFound("store.sql_bot.get.missing.app_error", "PatchBot")
	}
	if patch != nil {
		b.Patch(patch)
		b.UpdateAt = model.GetMillis()
		if u, ok := m.users[botUserID]; ok {
			u.Username, u.FirstName = b.Username, b.DisplayName
		}
	}
	return b.Clone(), nil
}

func (m *memAPI) UpdateBotActive(botUserID string, active bool) (*model.Bot, *model.AppError) {
	defer m.guard("UpdateBotActive")
	m.rec.call("UpdateBotActive")
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.bots[botUserID]
	if !ok {
		return nil, notFound("store.sql_bot.get.missing.app_error", "UpdateBotActive")
	}
	if active {
		b.DeleteAt = 0
	} else if b.DeleteAt == 0 {
		b.DeleteAt = model.GetMillis()
	}
	return b.Clone(), nil
}

// EnsureBotUser: the bot remembered under the plugin's mmi_botid key if it still exists, else an
// existing bot of that username (adopted), else a new one; the id is remembered either way.
func (m *memAPI) EnsureBotUser(bot *model.Bot) (string, error) {
	defer m.guard("EnsureBotUser")
	m.rec.call("EnsureBotUser")
	m.mu.Lock()
	defer m.mu.Unlock()
	if bot == nil {
		return "", &model.AppError{Id: "plugin_api.bot_cant_create_bot", Message: "no bot given", StatusCode: http.StatusBadRequest, Where: "MemAPI.EnsureBotUser"}
	}
	if id := string(m.kv[botIDKey]); id != "" {
		if _, ok := m.bots[id]; ok {
			return id, nil
		}
	}
	for id, u := range m.users {
		if u.Username == bot.Username {
			if !u.IsBot {
				return "", &model.AppError{Id: "plugin.api.get_bot_user_id.create_bot.user_exists", Message: "a user with that username exists and is not a bot", StatusCode: http.StatusBadRequest, Where: "MemAPI.EnsureBotUser"}
			}
			m.kv[botIDKey] = []byte(id)
			return id, nil
		}
	}
	created, appErr := m.createBotLocked(bot)
	if appErr != nil {
		return "", appErr
	}
	m.kv[botIDKey] = []byte(created.UserId)
	return created.UserId, nil
}

// ---- KV beyond get/set ----

// expiredLocked drops key if its expiry has passed, as the server's KV reads do.
func (m *memAPI) expiredLocked(key string) {
	if at, ok := m.kvExpiry[key]; ok && !time.Now().Before(at) {
		delete(m.kv, key)
		delete(m.kvExpiry, key)
	}
}

func (m *memAPI) KVSetWithExpiry(key string, value []byte, expireInSeconds int64) *model.AppError {
	defer m.guard("KVSetWithExpiry")
	m.rec.call("KVSetWithExpiry")
	_, appErr := m.kvSetWithOptions(key, value, model.PluginKVSetOptions{ExpireInSeconds: expireInSeconds})
	return appErr
}

func (m *memAPI) KVSetWithOptions(key string, value []byte, options model.PluginKVSetOptions) (bool, *model.AppError) {
	defer m.guard("KVSetWithOptions")
	m.rec.call("KVSetWithOptions")
	return m.kvSetWithOptions(key, value, options)
}

// KVCompareAndDelete deletes key only if it holds oldValue, as the server does (an atomic
// set to nil).
func (m *memAPI) KVCompareAndDelete(key string, oldValue []byte) (bool, *model.AppError) {
	defer m.guard("KVCompareAndDelete")
	m.rec.call("KVCompareAndDelete")
	return m.kvSetWithOptions(key, nil, model.PluginKVSetOptions{Atomic: true, OldValue: oldValue})
}

// harnessSiteURL is the in-memory server's Site URL, the host its plugin requests are sent to.
const harnessSiteURL = "http://mattermost.test"

// GetConfig answers the server's default configuration with the harness's Site URL (plugins
// build their own URLs from it, as the OAuth2 connect flow does for its redirect URL).
func (m *memAPI) GetConfig() *model.Config {
	defer m.guard("GetConfig")
	m.rec.call("GetConfig")
	cfg := &model.Config{}
	cfg.SetDefaults()
	cfg.ServiceSettings.SiteURL = model.NewPointer(harnessSiteURL)
	return cfg
}

func (m *memAPI) kvSetWithOptions(key string, value []byte, options model.PluginKVSetOptions) (bool, *model.AppError) {
	if err := options.IsValid(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if appErr, ok := m.kvFailures[key]; ok {
		return false, appErr
	}
	m.expiredLocked(key)
	current, exists := m.kv[key]
	if options.Atomic {
		// Compare-and-set: a nil OldValue means "only if absent".
		if options.OldValue == nil && exists || options.OldValue != nil && (!exists || !bytes.Equal(current, options.OldValue)) {
			return false, nil
		}
	}
	if value == nil {
		delete(m.kv, key)
		delete(m.kvExpiry, key)
		return true, nil
	}
	m.kv[key] = append([]byte(nil), value...)
	if options.ExpireInSeconds > 0 {
		m.kvExpiry[key] = time.Now().Add(time.Duration(options.ExpireInSeconds) * time.Second)
	} else {
		delete(m.kvExpiry, key)
	}
	return true, nil
}

func (m *memAPI) KVDeleteAll() *model.AppError {
	defer m.guard("KVDeleteAll")
	m.rec.call("KVDeleteAll")
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.kv)
	clear(m.kvExpiry)
	return nil
}

func (m *memAPI) KVList(page, perPage int) ([]string, *model.AppError) {
	defer m.guard("KVList")
	m.rec.call("KVList")
	if page < 0 || perPage <= 0 {
		return nil, &model.AppError{Id: "plugin_api.kv_list.invalid", Message: "page must be >= 0 and perPage > 0", StatusCode: http.StatusBadRequest, Where: "MemAPI.KVList"}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.kv))
	for k := range m.kv {
		m.expiredLocked(k)
		if _, ok := m.kv[k]; ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	start := min(page*perPage, len(keys))
	end := min(start+perPage, len(keys))
	return keys[start:end], nil
}
