package config

import (
	"fmt"
	"reflect"
	"strings"
)

// How a changed key takes effect when the running server reloads its
// configuration (SIGHUP, `systemctl reload`).
type Apply int

const (
	// Restart: the value is baked into state opened at start (the data
	// directory and what lives in it, names already handed to clients);
	// a reload keeps the running value and says so.
	Restart Apply = iota
	// Live: the new value applies to what starts after the reload (new
	// connections, the next delivery attempt, the next log line).
	Live
	// Reopen: a listener address; the new listener is opened first, then
	// the old one stops accepting, and sessions on it finish as they are.
	Reopen
)

func (a Apply) String() string {
	return [...]string{"restart", "live", "reopen"}[a]
}

// applies classifies every key of the file. TestEveryKeyClassified keeps
// it complete: a new key must be decided here before it builds.
var applies = map[string]Apply{
	"data":                          Restart, // the open database, its lock and the admin socket
	"hostname":                      Restart, // greeting, Received, Message-IDs, issuer URL, queue node name
	"submission":                    Reopen,
	"submission_legacy":             Reopen,
	"submissions":                   Reopen,
	"mx":                            Reopen,
	"admin":                         Reopen,
	"imap":                          Reopen,
	"imaps":                         Reopen,
	"pop3":                          Reopen,
	"pop3s":                         Reopen,
	"public_url":                    Restart, // the built-in issuer's identifier, in tokens already issued
	"tls_cert":                      Live,
	"tls_key":                       Live,
	"tls_client_ca":                 Live,
	"resolver":                      Live,
	"secret_key_file":               Restart, // seals what the store already holds
	"store.url":                     Restart, // the open database: a node moves to another store only by restarting
	"delivery.workers":              Live,
	"delivery.per_destination":      Live,
	"delivery.retry_min":            Live,
	"delivery.retry_max":            Live,
	"delivery.retry_for":            Live,
	"delivery.delay_notice":         Live,
	"delivery.mx_port":              Live,
	"delivery.command_timeout":      Live,
	"delivery.root_ca_file":         Live,
	"auth.verify_concurrency":       Live,
	"auth.verify_queue":             Live,
	"auth.verify_wait":              Live,
	"auth.verify_per_address":       Live,
	"auth.lockout_threshold":        Live,
	"auth.lockout_duration":         Live,
	"throttle.direct_send_per_hour": Live,
	"throttle.relay_per_hour":       Live,
	"trace_retention":               Live,
	"idle_timeout":                  Live,
	"max_connections":               Live,
	"max_connections_per_ip":        Live,
	"connection_rate_per_ip":        Live,
	"memory_limit":                  Live,
	"log_level":                     Live,
	"log_format":                    Live,
	"metrics_token":                 Live,
	"allow_insecure_http_loopback":  Restart, // baked into the HTTP clients of the OAuth verifier and the queue
	// The ACME manager (its account, cache, names and challenge listener)
	// is built once at start; a certificate it holds is renewed in place.
	"acme.enabled":       Restart,
	"acme.directory_url": Restart,
	"acme.email":         Restart,
	"acme.names":         Restart,
	"acme.http_listen":   Restart,
	"acme.root_ca_file":  Restart,
	"acme.renew_before":  Restart,
	// The admin center's OIDC client (its provider, discovered once, and
	// its secret) is built when the admin listener starts.
	"webadmin.oidc.issuer":             Restart,
	"webadmin.oidc.client_id":          Restart,
	"webadmin.oidc.client_secret_file": Restart,
	"webadmin.oidc.claim":              Restart,
}

// secretKeys are never shown in a change's values.
var secretKeys = map[string]bool{"metrics_token": true, "store.url": true} // a URL may hold a password

// Change is one key whose value differs between two configurations.
type Change struct {
	Key      string // dotted, as in the file: "delivery.retry_min"
	Old, New string // the values as the file writes them; "(hidden)" for secrets
	Apply    Apply
}

// Diff lists the keys whose values differ from old to new, in the order
// of the Config struct, each with how it takes effect.
func Diff(old, new Config) []Change {
	var out []Change
	walk(reflect.ValueOf(old), reflect.ValueOf(new), "", func(key string, a, b reflect.Value) {
		if reflect.DeepEqual(a.Interface(), b.Interface()) {
			return
		}
		c := Change{Key: key, Old: show(a), New: show(b), Apply: applies[key]}
		if secretKeys[key] {
			c.Old, c.New = "(hidden)", "(hidden)"
		}
		out = append(out, c)
	})
	return out
}

// Keys lists every key of the file, dotted, in the order of the struct.
func Keys() []string {
	var keys []string
	v := reflect.ValueOf(Defaults())
	walk(v, v, "", func(key string, _, _ reflect.Value) { keys = append(keys, key) })
	return keys
}

// ApplyOf says how a key takes effect on reload; an unknown key needs a
// restart.
func ApplyOf(key string) Apply { return applies[key] }

func walk(a, b reflect.Value, prefix string, fn func(key string, a, b reflect.Value)) {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + name
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[Duration]() {
			walk(a.Field(i), b.Field(i), key+".", fn)
			continue
		}
		fn(key, a.Field(i), b.Field(i))
	}
}

func show(v reflect.Value) string {
	if s, ok := v.Interface().(string); ok {
		if s == "" {
			return `""`
		}
		return s
	}
	return fmt.Sprint(v.Interface())
}

// Keep sets key (dotted) in c to its value in from: a reload keeps the
// running value of a key it cannot apply. An unknown key changes nothing.
func (c *Config) Keep(key string, from Config) {
	dst, src := reflect.ValueOf(c).Elem(), reflect.ValueOf(from)
	for part := range strings.SplitSeq(key, ".") {
		i := fieldByKey(dst.Type(), part)
		if i < 0 {
			return
		}
		dst, src = dst.Field(i), src.Field(i)
	}
	dst.Set(src)
}

func fieldByKey(t reflect.Type, key string) int {
	if t.Kind() != reflect.Struct || t == reflect.TypeFor[Duration]() {
		return -1
	}
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ","); name == key {
			return i
		}
	}
	return -1
}
