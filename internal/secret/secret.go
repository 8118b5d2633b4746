// Package secret seals the secrets Postern must keep at rest (smart-host
// passwords, OAuth client secrets, DKIM private keys) with AES-256-GCM under
// one key held in a file of its own.
//
// What this protects: a copy of the database (a backup, a replica, a dump
// attached to a support ticket) reveals no secret without the key file. It
// does not protect against someone who can read both; keep the key file out
// of database backups (secret_key_file) for that.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the length of a key: AES-256.
const KeySize = 32

// prefix marks sealed values, so that a value that is not sealed, or is
// sealed by a later format, is recognised rather than misread.
const prefix = "v1:"

// Box seals and opens values with one key.
type Box struct {
	aead cipher.AEAD
	key  []byte
}

// New returns a Box for key, which must be KeySize bytes.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret key must be %d bytes, not %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead, key: append([]byte(nil), key...)}, nil
}

// Derive returns a key for another purpose, named by label, derived from
// the box's key (HMAC-SHA256 of the label): every node holding the same
// key file derives the same key, and the derived key reveals nothing of
// the box's. The smart lockout keys its digests of wrong passwords with
// one, so that the nodes sharing a database recognise each other's.
func (b *Box) Derive(label string) [32]byte {
	m := hmac.New(sha256.New, b.key)
	m.Write([]byte("postern derived key: " + label))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

// LoadOrCreate reads the key file at path, creating it (mode 0600, random
// key) when it does not exist yet.
func LoadOrCreate(path string) (*Box, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		// O_EXCL: two processes starting at once must not write two keys.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreate(path)
		}
		if err != nil {
			return nil, err
		}
		_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("secret key file %s: %w", path, err)
		}
		return New(key)
	}
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("secret key file %s: not a base64 %d-byte key", path, KeySize)
	}
	return New(key)
}

// Seal encrypts plaintext; the empty string stays empty, so "no secret set"
// needs no ciphertext.
func (b *Box) Seal(plaintext string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := b.aead.Seal(nonce, nonce, []byte(plaintext), nil)
	return prefix + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// ErrCorrupt reports a sealed value that does not open under this key: the
// data was altered, or the key file is not the one it was sealed with.
var ErrCorrupt = errors.New("sealed secret does not open with this key (wrong secret key file?)")

// Open decrypts a value made by Seal.
func (b *Box) Open(sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	raw, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", ErrCorrupt
	}
	data, err := base64.RawStdEncoding.DecodeString(raw)
	n := b.aead.NonceSize()
	if err != nil || len(data) < n {
		return "", ErrCorrupt
	}
	plain, err := b.aead.Open(nil, data[:n], data[n:], nil)
	if err != nil {
		return "", ErrCorrupt
	}
	return string(plain), nil
}
