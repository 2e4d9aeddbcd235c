package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// NewSecret returns a Secret already resolved to v, for configs built in
// code (tests, the simulator). It behaves as if loaded from a file.
func NewSecret(v string) Secret { return Secret{resolved: v} }

// MarshalYAML shows where a secret comes from but never its value, so a
// marshalled Config is safe to print.
func (s Secret) MarshalYAML() (any, error) {
	m := map[string]string{}
	if s.File != "" {
		m["file"] = s.File
	}
	if s.Env != "" {
		m["env"] = s.Env
	}
	if s.Value != "" || (s.File == "" && s.Env == "" && s.resolved != "") {
		m["value"] = "[redacted]"
	}
	return m, nil
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string {
	return fmt.Sprintf("config.Secret{File:%q, Env:%q, Value:[redacted]}", s.File, s.Env)
}

// configured reports whether any source is named.
func (s Secret) configured() bool { return s.File != "" || s.Env != "" || s.Value != "" }

// secretRef pairs a secret with its key path.
type secretRef struct {
	path   string
	secret *Secret
}

func (c *Config) secrets() []secretRef {
	refs := []secretRef{
		{"officernd.client_secret", &c.OfficeRnD.ClientSecret},
		{"sync.webhook_secret", &c.Sync.WebhookSecret},
		{"smtp.password", &c.SMTP.Password},
	}
	for i := range c.RADIUS.Clients {
		refs = append(refs, secretRef{fmt.Sprintf("radius.clients[%d].secret", i), &c.RADIUS.Clients[i].Secret})
	}
	return refs
}

// resolveSecrets reads every configured secret from its file, environment
// variable or inline value.
func (c *Config) resolveSecrets() []Problem {
	var probs []Problem
	for _, r := range c.secrets() {
		if p, ok := c.resolveSecret(r.path, r.secret); !ok {
			probs = append(probs, p)
		}
	}
	return probs
}

func (c *Config) resolveSecret(path string, s *Secret) (Problem, bool) {
	n := 0
	for _, set := range []bool{s.File != "", s.Env != "", s.Value != ""} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return Problem{}, true
	case n > 1:
		return c.problem(path, "secret names more than one source (file, env, value)",
			"keep exactly one of file:, env: or value:"), false
	case s.Value != "":
		s.resolved = s.Value
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok || v == "" {
			return c.problem(path+".env", fmt.Sprintf("environment variable %s is unset or empty", s.Env),
				fmt.Sprintf("export %s=... in the service's environment, or use file: instead", s.Env)), false
		}
		s.resolved = v
	case s.File != "":
		v, p, ok := c.readSecretFile(path+".file", s.File)
		if !ok {
			return p, false
		}
		s.resolved = v
	}
	return Problem{}, true
}

func (c *Config) readSecretFile(path, name string) (string, Problem, bool) {
	full := name
	if !filepath.IsAbs(full) && c.src != nil && c.src.dir != "" {
		full = filepath.Join(c.src.dir, full)
	}
	fi, err := os.Stat(full)
	if err != nil {
		return "", c.problem(path, fmt.Sprintf("cannot read secret file %s: %v", full, err),
			fmt.Sprintf("create it with: install -m 600 /dev/null %s, then write the secret into it", full)), false
	}
	if !fi.Mode().IsRegular() {
		return "", c.problem(path, fmt.Sprintf("secret file %s is not a regular file", full),
			"point file: at a plain file holding only the secret"), false
	}
	if perm := fi.Mode().Perm(); perm&0o177 != 0 {
		return "", c.problem(path, fmt.Sprintf("secret file %s is readable or writable by group/others (mode %04o)", full, perm),
			fmt.Sprintf("chmod 600 %s", full)), false
	}
	b, err := os.ReadFile(full)
	if err != nil {
		return "", c.problem(path, fmt.Sprintf("cannot read secret file %s: %v", full, err),
			"check the file's owner: deskgated must be able to read it"), false
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if v == "" {
		return "", c.problem(path, fmt.Sprintf("secret file %s is empty", full),
			"write the secret into the file"), false
	}
	return v, Problem{}, true
}
