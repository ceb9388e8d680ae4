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
-- INTERNAL_FAILURE is never cached by Dovecot and lets it serve (even expired) cached successes
-- while postern is unreachable; IMAP answers NO [UNAVAILABLE] so clients retry instead of
-- prompting for a new password. mailcow's own script maps faults to a mismatch (fail closed,
-- but feeds fail2ban with outage noise); postern's rule is "faults are temporary".
--
-- Settings come only from the environment (Dovecot 2.3 passdb args accept nothing but file=,
-- blocking=, cache_key=, scheme=), imported with `import_environment`:
--   POSTERN_AUTH_URL         e.g. http://127.0.0.1:9082/  (use an IP literal: no DNS in the path)
--   POSTERN_INTERNAL_TOKEN   optional; sent as "Authorization: Bearer <token>"
--   POSTERN_AUTH_TIMEOUT_MS  optional, default 5000; whole-request budget per login

-- cjson.safe returns nil, err instead of raising, so a garbage body is a value we can map.
local json = require("cjson.safe")

local DEFAULT_TIMEOUT_MS = 5000
local MAX_TIMEOUT_MS = 600000
-- Close idle keep-alive connections before the server does: Node's http server (and so postern)
-- drops idle sockets about 1 s after keepAliveTimeout (5 s by default). Dovecot copes with a
-- socket the server closed while idle (measured); closing first only avoids reusing one at the
-- very moment the server closes it.
local MAX_IDLE_MS = 4000

local config = nil -- { url, token, timeout_ms }, set by script_init
local client = nil -- dovecot.http client, created on first use (one per auth worker process)

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

function script_init()
  local url = env_string("POSTERN_AUTH_URL")
  if url == nil then
    dovecot.i_error("postern passdb: POSTERN_AUTH_URL is not set; list it in import_environment")
    return 1
  end
  if not (url:match("^http://[^%s]+$") or url:match("^https://[^%s]+$")) then
    dovecot.i_error("postern passdb: POSTERN_AUTH_URL must be an http:// or https:// URL")
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

  config = { url = url, token = env_string("POSTERN_INTERNAL_TOKEN"), timeout_ms = timeout_ms }
  -- The token's presence is worth knowing; its value never goes to a log, nor does any
  -- user:password@ part of the URL.
  local shown_url = url:gsub("//[^/@]*@", "//***@")
  dovecot.i_info(string.format("postern passdb: url=%s timeout_ms=%d token=%s", shown_url,
    timeout_ms, config.token and "set" or "unset"))
  return 0
end

function script_deinit()
  client = nil
  config = nil
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

  local request = get_client():request({ url = config.url, method = "POST" })
  request:add_header("Content-Type", "application/json")
  request:add_header("Accept", "application/json")
  if config.token ~= nil then
    request:add_header("Authorization", "Bearer " .. config.token)
  end
  request:set_payload(body)
  local response = request:submit()
  local status = response:status()

  if status >= 9000 then
    -- Client-side failure (lib-http reports them as 9000 + error code): refused, timeout, ...
    req:log_warning(string.format("postern passdb: request failed: %s (status %d)",
      tostring(response:reason()), status))
    return PASSDB.PASSDB_RESULT_INTERNAL_FAILURE, "postern unreachable"
  end

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
