package main

import (
	"strings"

	goslo "github.com/goslo/goslo"
)

// sanitizeKeys is oslo.utils strutils._SANITIZE_KEYS: a key that contains
// any of them, case aside, has its value masked by mask_dict_password
// (which oslo.context's to_policy_values/logging rely on).
var sanitizeKeys = []string{"adminpass", "admin_pass", "password", "admin_password",
	"auth_token", "new_pass", "auth_password", "secret_uuid",
	"secret", "sys_pswd", "token", "configdrive",
	"chappassword", "encrypted_key", "private_key",
	"encryption_key_id", "fernetkey", "sslkey", "passphrase",
	"cephclusterfsid", "octaviaheartbeatkey", "rabbitcookie",
	"cephmanilaclientkey", "pacemakerremoteauthkey",
	"designaterndckey", "cephadminkey", "heatauthencryptionkey",
	"cephclientkey", "keystonecredential",
	"barbicansimplecryptokek", "cephrgwkey", "swifthashsuffix",
	"migrationsshkey", "cephmdskey", "cephmonkey"}

const maskedSecret = "***"

func secretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range sanitizeKeys {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// maskSecrets is mask_dict_password for what goslo serve prints: a copy
// of m whose values under a secret key are "***", nested maps (in lists
// too) masked the same way. Unlike oslo it does not scan free text for
// "password=..." patterns.
func maskSecrets(v any) any {
	switch x := v.(type) {
	case *goslo.Map:
		if x == nil {
			return x
		}
		out := goslo.NewMap()
		for _, kv := range x.Items() {
			if secretKey(kv.Key) {
				if _, nested := kv.Value.(*goslo.Map); !nested {
					out.Set(kv.Key, maskedSecret)
					continue
				}
			}
			out.Set(kv.Key, maskSecrets(kv.Value))
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = maskSecrets(x[i])
		}
		return out
	}
	return v
}
