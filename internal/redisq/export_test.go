package redisq

// ProtocolNames returns the values of every protocol name the scripts may use.
func ProtocolNames() []string {
	out := make([]string, 0, len(protocolNames))
	for _, v := range protocolNames {
		out = append(out, v)
	}
	return out
}

// ScriptSources returns the Lua source of every script, as sent to Redis.
func ScriptSources() map[string]string {
	out := map[string]string{}
	for name, s := range scripts {
		out[name] = sources[s]
	}
	return out
}

// VersionAtLeast is versionAtLeast, for its test.
var VersionAtLeast = versionAtLeast
