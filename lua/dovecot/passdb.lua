-- postern passdb for Dovecot's auth Lua (written for 2.3.19 / Lua 5.4, prepared for 2.4).
-- Owns: asking postern's internal listener whether (user, password, service, client IP) may log
-- in, and mapping the answer to a passdb result. Must not: decide anything itself (no domain
-- short-cuts, no hashing), log a password or the token, or turn a fault into a denial.
--
-- Contract: DESIGN.md §3.1. Mapping:
--   200 + JSON success == true                 -> PASSDB_RESULT_OK (+ user=<canonical> if renamed)
--   401 (result user_unknown / user_disabled)  -> USER_UNKNOWN / USER_DISABLED
--   401 (anything else)                        -> PASSWORD_MISMATCH
--   everything else (5xx, 4xx, timeout, refused, bad JSON, 200 without success)
--                                              -> INTERNAL_FAILURE
-- With several replicas listed (POSTERN_AUTH_URL below), a connection error or a timeout moves
-- on to the next replica; any HTTP answer (200, 401, 5xx, ...) is final and never retried
-- elsewhere, so one replica's denial can never be turned into another's success.
-- INTERNAL_FAILURE is never cached by Dovecot and lets it serve (even expired) cached successes
-- while postern is unreachable; IMAP answers NO [UNAVAILABLE] so clients retry instead of
-- prompting for a new password. mailcow's own script maps faults to a mismatch (fail closed,
-- but feeds fail2ban with outage noise); postern's rule is "faults are temporary".
--
-- Settings come only from the environment (Dovecot 2.3 passdb args accept nothing but file=,
-- blocking=, cache_key=, scheme=), imported with `import_environment`:
--   POSTERN_AUTH_URL         e.g. http://127.0.0.1:9082/  (use an IP literal: no DNS in the path),
--                            or a comma-separated list of replicas in order of preference,
--                            e.g. http://10.0.0.11:9082/,http://10.0.0.12:9082/
--   POSTERN_INTERNAL_TOKEN   optional; sent as "Authorization: Bearer <token>"
--   POSTERN_AUTH_TIMEOUT_MS  optional, default 5000; budget of one request to one replica
--
-- Failover: a login asks the replicas in list order and stops at the first HTTP answer. A
-- replica that could not be connected to, lost the connection or timed out is remembered (per
-- auth worker process) as dead for 2-3 s (BACKOFF_SECONDS): in that time it is asked last, so
-- logins go straight to a live replica instead of paying a timeout each. When every replica
-- fails, the login is a temporary failure (INTERNAL_FAILURE). Worst case for one login: the
-- timeout once per replica that hangs.

-- cjson.safe returns nil, err instead of raising, so a garbage body is a value we can map.
local json = require("cjson.safe")

local DEFAULT_TIMEOUT_MS = 5000
local MAX_TIMEOUT_MS = 600000
-- Close idle keep-alive connections before the server does: Node's http server (and so postern)
-- drops idle sockets about 1 s after keepAliveTimeout (5 s by default). Dovecot copes with a
-- socket the server closed while idle (measured); closing first only avoids reusing one at the
-- very moment the server closes it.
local MAX_IDLE_MS = 4000

-- A replica that failed is asked last until os.time() reaches failure time + 3, which is 2 to 3 s
-- later (os.time() counts whole seconds; Lua has no finer clock here).
local BACKOFF_SECONDS = 3

-- lib-http's client-side failures are reported as statuses from 9000 on
-- (enum http_client_request_error, lib-http/http-client.h, same order in 2.3 and 2.4): these four
-- mean the replica could not be reached or did not answer in time, so another replica may.
-- The others (aborted 9000, invalid URL 9001, invalid redirect 9004, broken payload 9006, bad
-- response 9007) are not about reachability: they are a temporary failure without failover.
local FAILOVER_STATUS = {
  [9002] = true, -- host lookup failed
  [9003] = true, -- connect failed
  [9005] = true, -- connection lost
  [9008] = true, -- timed out
}

local config = nil -- { urls, shown_urls, token, timeout_ms }, set by script_init
local client = nil -- dovecot.http client, created on first use (one per auth worker process)
local dead_until = {} -- url index -> os.time() until which that replica counts as dead

local function env_string(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    return nil
  end
  return value
end

-- Dovecot 2.3.19 ships dovecot.http.client{} (lib-lua/dlua-dovecot-http.c). Its settings table
-- uses 2.3's http_client_settings field names; unknown keys are silently ignored there, so the
-- keys below were checked to take effect (test/lua/passdb-lua.test.ts and
-- deploy/dovecot/README.md: timeouts, attempts, redirects, user agent, idle close);
-- connect_timeout_msecs is the one not measured (the absolute timeout bounds it anyway).
-- Dovecot 2.4 renamed the keys (request_timeout, request_max_attempts, ... with unit strings)
-- and rejects unknown ones, so we try the 2.3 names first and fall back to the 2.4 names.
local function create_client(timeout_ms)
  local settings_23 = {
    user_agent = "postern-dovecot-passdb",
    -- Per-attempt timeout (default would be 60 s) ...
    request_timeout_msecs = timeout_ms,
    -- ... and the total budget across attempts, so a retry can never double the wait.
    request_absolute_timeout_msecs = timeout_ms,
    connect_timeout_msecs = timeout_ms,
    -- One retry, for the rare keep-alive socket that dies between two logins. A timeout cannot
    -- trigger it in practice: the absolute timeout above has already expired by then. postern
    -- counts failures by distinct (user, password fingerprint), so a replay never counts twice.
    max_attempts = 2,
    max_idle_time_msecs = MAX_IDLE_MS,
    -- A redirect would replay the password to wherever Location points: never follow.
    no_auto_redirect = true,
  }
  local ok, result = pcall(dovecot.http.client, settings_23)
  if ok then
    return result
  end
  local settings_24 = {
    user_agent = "postern-dovecot-passdb",
    request_timeout = timeout_ms .. "ms",
    request_absolute_timeout = timeout_ms .. "ms",
    connect_timeout = timeout_ms .. "ms",
    request_max_attempts = 2,
    max_idle_time = MAX_IDLE_MS .. "ms",
    auto_redirect = "no",
  }
  return dovecot.http.client(settings_24)
end

local function get_client()
  if client == nil then
    client = create_client(config.timeout_ms)
  end
  return client
end

-- Never show a user:password@ part of a URL.
local function shown(url)
  return (url:gsub("//[^/@]*@", "//***@"))
end

-- "url" or "url1,url2,...": a list of distinct http(s) URLs, blanks around commas allowed.
local function parse_urls(raw)
  local urls = {}
  local seen = {}
  for entry in (raw .. ","):gmatch("([^,]*),") do
    local url = entry:match("^%s*(.-)%s*$")
    if not (url:match("^http://[^%s]+$") or url:match("^https://[^%s]+$")) then
      return nil, "POSTERN_AUTH_URL must be an http:// or https:// URL, or a comma-separated list of them"
    end
    if seen[url] then
      return nil, "POSTERN_AUTH_URL lists " .. shown(url) .. " twice"
    end
    seen[url] = true
    urls[#urls + 1] = url
  end
  return urls
end

function script_init()
  local raw_url = env_string("POSTERN_AUTH_URL")
  if raw_url == nil then
    dovecot.i_error("postern passdb: POSTERN_AUTH_URL is not set; list it in import_environment")
    return 1
  end
  local urls, url_error = parse_urls(raw_url)
  if urls == nil then
    dovecot.i_error("postern passdb: " .. url_error)
    return 1
  end

  local timeout_ms = DEFAULT_TIMEOUT_MS
  local raw_timeout = env_string("POSTERN_AUTH_TIMEOUT_MS")
  if raw_timeout ~= nil then
    timeout_ms = math.tointeger(tonumber(raw_timeout))
    if timeout_ms == nil or timeout_ms < 1 or timeout_ms > MAX_TIMEOUT_MS then
      dovecot.i_error("postern passdb: POSTERN_AUTH_TIMEOUT_MS must be an integer from 1 to "
        .. MAX_TIMEOUT_MS)
      return 1
    end
  end

  local shown_urls = {}
  for i, url in ipairs(urls) do
    shown_urls[i] = shown(url)
  end
  config = { urls = urls, shown_urls = shown_urls, token = env_string("POSTERN_INTERNAL_TOKEN"),
    timeout_ms = timeout_ms }
  dead_until = {}
  -- The token's presence is worth knowing; its value never goes to a log, nor does any
  -- user:password@ part of a URL.
  dovecot.i_info(string.format("postern passdb: url=%s timeout_ms=%d token=%s",
    table.concat(shown_urls, ","), timeout_ms, config.token and "set" or "unset"))
  return 0
end

function script_deinit()
  client = nil
  config = nil
  dead_until = {}
end

-- Only plaintext verification is possible against postern: a credentials lookup (CRAM-MD5,
-- doveadm auth lookup, ...) finds nothing, like mailcow's script.
function auth_passdb_lookup(req)
  return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, "postern passdb verifies passwords only"
end

-- Dovecot 2.4 asks the script for its cache key (2.3 takes cache_key= from the passdb args and
-- never calls this). Same key as the 2.3 snippet: service, user and password, see
-- deploy/dovecot/conf.d/auth-postern.conf.ext for why the password is in it.
function auth_passdb_get_cache_key()
  return "%{protocol}:%{user}:%{password}"
end

-- Dovecot's request variables are "" (not nil) when unknown, e.g. an IP on a unix socket.
local function non_empty(value)
  if value == nil or value == "" then
    return nil
  end
  return value
end

local function decode_object(payload)
  local data = json.decode(payload)
  if type(data) ~= "table" then
    return nil
  end
  return data
end

local PASSDB = nil -- dovecot.auth constants, looked up lazily (dovecot.auth exists only in auth)

local function post(url, body)
  local request = get_client():request({ url = url, method = "POST" })
  request:add_header("Content-Type", "application/json")
  request:add_header("Accept", "application/json")
  if config.token ~= nil then
    request:add_header("Authorization", "Bearer " .. config.token)
  end
  request:set_payload(body)
  return request:submit()
end

-- The replicas to ask, in list order, those in back-off after the others (still in list order):
-- a dead replica is a last resort, never skipped, so a list whose replicas are all in back-off
-- still logs users in as soon as one of them is back.
local function replica_order(now)
  local live, dead = {}, {}
  for i = 1, #config.urls do
    local until_time = dead_until[i]
    if until_time ~= nil and now < until_time then
      dead[#dead + 1] = i
    else
      live[#live + 1] = i
    end
  end
  for _, i in ipairs(dead) do
    live[#live + 1] = i
  end
  return live
end

-- Returns the first HTTP answer of a replica; or nil and the reason for Dovecot when none
-- answered.
local function ask_replicas(req, body)
  local order = replica_order(os.time())
  for position, i in ipairs(order) do
    local response = post(config.urls[i], body)
    local status = response:status()
    if status < 9000 then
      dead_until[i] = nil
      return response
    end
    local failover = FAILOVER_STATUS[status] == true
    local next_i = order[position + 1]
    local next_step = ""
    if failover then
      next_step = next_i == nil and "; no replica left" or ("; trying " .. config.shown_urls[next_i])
    end
    req:log_warning(string.format("postern passdb: request to %s failed: %s (status %d)%s",
      config.shown_urls[i], tostring(response:reason()), status, next_step))
    if not failover then
      -- Not about reachability (lib-http itself refused the request): another replica would
      -- fare no better, and this one stays in the rotation.
      return nil, "postern request failed"
    end
    dead_until[i] = os.time() + BACKOFF_SECONDS
  end
  return nil, "postern unreachable"
end

local function verify(req, pass)
  PASSDB = PASSDB or dovecot.auth
  local user = req.user
  local body, encode_error = json.encode({
    username = user,
    password = pass,
    -- 2.3 names first (real_rip, service); 2.4 renamed them (real_remote_ip, protocol).
    real_rip = non_empty(req.real_rip) or non_empty(req.real_remote_ip) or non_empty(req.remote_ip),
    service = non_empty(req.service) or non_empty(req.protocol),
    -- This script passes the canonical name of the answer on to Dovecot (user=...), so postern
    -- may resolve alias domains for it; mailcow's script sends no such flag and gets 401.
    resolve_alias_domains = true,
  })
  if body == nil then
    -- cjson's message names the problem type, not the value.
    req:log_warning("postern passdb: cannot encode request: " .. tostring(encode_error))
    return PASSDB.PASSDB_RESULT_INTERNAL_FAILURE, "postern request could not be encoded"
  end

  local response, failure = ask_replicas(req, body)
  if response == nil then
    return PASSDB.PASSDB_RESULT_INTERNAL_FAILURE, failure
  end
  local status = response:status()

  if status == 200 then
    local data = decode_object(response:payload())
    if data == nil or data.success ~= true then
      req:log_warning("postern passdb: HTTP 200 without success=true in a JSON body")
      return PASSDB.PASSDB_RESULT_INTERNAL_FAILURE, "postern answered 200 without success"
    end
    local canonical = data.username
    if type(canonical) == "string" and canonical ~= "" and canonical ~= user then
      -- Dovecot continues with the canonical mailbox name (userdb lookup, mail location,
      -- logs). Refuse names that would corrupt Dovecot's tab/space separated fields.
      if not canonical:match("^[^%s%c]+$") then
        req:log_warning("postern passdb: HTTP 200 with an unusable username field")
        return PASSDB.PASSDB_RESULT_INTERNAL_FAILURE, "postern answered an unusable username"
      end
      return PASSDB.PASSDB_RESULT_OK, { user = canonical }
    end
    return PASSDB.PASSDB_RESULT_OK, {}
  end

  if status == 401 then
    -- A 401 is a denial whatever its body says; `result` only refines it.
    local data = decode_object(response:payload())
    local result = data and data.result
    if result == "user_unknown" then
      return PASSDB.PASSDB_RESULT_USER_UNKNOWN, "postern: unknown user"
    elseif result == "user_disabled" then
      return PASSDB.PASSDB_RESULT_USER_DISABLED, "postern: user disabled"
    end
    return PASSDB.PASSDB_RESULT_PASSWORD_MISMATCH, "postern: password mismatch"
  end

  req:log_warning(string.format("postern passdb: unexpected HTTP status %d", status))
  return PASSDB.PASSDB_RESULT_INTERNAL_FAILURE, "postern answered HTTP " .. status
end

function auth_password_verify(req, pass)
  -- Any Lua error (a bug, an unexpected response object) must still be a temporary failure,
  -- and its message must not echo the request body.
  local ok, result, extra = pcall(verify, req, pass)
  if not ok then
    req:log_error("postern passdb: script error: " .. tostring(result))
    return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, "postern passdb script error"
  end
  return result, extra
end
