package admin

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/issuer"
)

// BuiltInIssuerName is the AuthServer that stands for Postern's own issuer.
const BuiltInIssuerName = "Postern"

// EnsureBuiltInIssuer trusts Postern's own issuer at base (its public
// URL), creating or updating its AuthServer; the server calls it when its
// HTTPS listener starts.
func (s *Service) EnsureBuiltInIssuer(ctx context.Context, base string) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		a := &directory.AuthServer{OrgID: org.ID, Name: BuiltInIssuerName, BuiltIn: true, Enabled: true,
			Audience: issuer.Audience, UserClaims: directory.DefaultUserClaims}
		for _, cur := range dir.Contents().AuthServers {
			if cur.OrgID == org.ID && cur.BuiltIn {
				c := *cur
				a = &c
			}
		}
		want := *a
		want.Issuer, want.AuthMetadataUrl = base, base+issuer.MetadataPath
		want.JwksUri, want.TokenEndpoint = base+issuer.KeysPath, base+issuer.TokenPath
		if a.ID != 0 && want.Issuer == a.Issuer && want.JwksUri == a.JwksUri && want.TokenEndpoint == a.TokenEndpoint {
			return nil
		}
		return storeError(s.Store.SaveAuthServer(ctx, &want), "auth server", want.Name)
	})
}

// OAuthApps lists the built-in issuer's app registrations, or the one
// named by name or application ID.
func (s *Service) OAuthApps(identity string) ([]*directory.OAuthApp, error) {
	org := s.org()
	var out []*directory.OAuthApp
	for _, a := range s.Dir.Load().Contents().OAuthApps {
		if a.OrgID == org.ID && (identity == "" || strings.EqualFold(a.Name, identity) || a.AppId == identity) {
			out = append(out, a)
		}
	}
	if identity != "" && len(out) == 0 {
		return nil, NotFound(identity)
	}
	return out, nil
}

// NewOAuthApp registers an application with the built-in issuer and as a
// service principal (so Add-MailboxPermission -User <name> works at once).
// It returns the app and its client secret, shown this once, unless a
// certificate is given instead.
func (s *Service) NewOAuthApp(ctx context.Context, name, certificate string) (*directory.OAuthApp, string, error) {
	app := &directory.OAuthApp{Name: strings.TrimSpace(name), AppId: newGUID()}
	var clientSecret string
	err := s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		if app.Name == "" {
			return fmt.Errorf("Cannot process command because of one or more missing mandatory parameters: Name.")
		}
		app.OrgID = org.ID
		if certificate != "" {
			pemText, err := readCertificate(certificate)
			if err != nil {
				return err
			}
			app.Certificates = []string{pemText}
		} else {
			secret, hash, err := s.newClientSecret()
			if err != nil {
				return err
			}
			clientSecret, app.SecretHashes = secret, []string{hash}
		}
		if err := storeError(s.Store.SaveOAuthApp(ctx, app), "app", app.Name); err != nil {
			return err
		}
		return storeError(s.Store.SaveServicePrincipal(ctx, &directory.ServicePrincipal{OrgID: org.ID, AppId: app.AppId,
			ObjectId: newGUID(), DisplayName: app.Name}), "service principal", app.Name)
	})
	if err != nil {
		return nil, "", err
	}
	return app, clientSecret, nil
}

// newClientSecret makes a 32-byte random secret and its argon2id hash.
func (s *Service) newClientSecret() (secret, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	secret = base64.RawURLEncoding.EncodeToString(b[:])
	hash, err = s.HashPassword(secret)
	return secret, hash, err
}

// NewOAuthAppSecret adds a client secret to an app and returns it (shown
// this once); existing secrets keep working until the app is removed, so a
// secret can be replaced without downtime.
func (s *Service) NewOAuthAppSecret(ctx context.Context, identity string) (string, error) {
	var secret string
	err := s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		apps, err := s.OAuthApps(identity)
		if err != nil {
			return err
		}
		a := *apps[0]
		var hash string
		if secret, hash, err = s.newClientSecret(); err != nil {
			return err
		}
		a.SecretHashes = append(append([]string{}, a.SecretHashes...), hash)
		return storeError(s.Store.SaveOAuthApp(ctx, &a), "app", a.Name)
	})
	return secret, err
}

// AddOAuthAppCertificate registers a certificate whose key may sign client
// assertions for the app.
func (s *Service) AddOAuthAppCertificate(ctx context.Context, identity, certificate string) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		apps, err := s.OAuthApps(identity)
		if err != nil {
			return err
		}
		pemText, err := readCertificate(certificate)
		if err != nil {
			return err
		}
		a := *apps[0]
		a.Certificates = append(append([]string{}, a.Certificates...), pemText)
		return storeError(s.Store.SaveOAuthApp(ctx, &a), "app", a.Name)
	})
}

// RemoveOAuthApp deletes an app registration and its service principal
// (with its mailbox grants): its tokens stop working at once.
func (s *Service) RemoveOAuthApp(ctx context.Context, identity string) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		apps, err := s.OAuthApps(identity)
		if err != nil {
			return err
		}
		if sp := dir.ServicePrincipal(org.ID, apps[0].AppId); sp != nil {
			if err := s.Store.DeleteServicePrincipal(ctx, sp.ID); err != nil {
				return err
			}
		}
		return storeError(s.Store.DeleteOAuthApp(ctx, apps[0].ID), "app", apps[0].Name)
	})
}

// RotateOAuthSigningKey gives the built-in issuer a new signing key; the
// previous key stays published for the tokens it signed.
func (s *Service) RotateOAuthSigningKey(ctx context.Context) error {
	if s.IssuerKeys == nil {
		return fmt.Errorf("the built-in issuer is not available")
	}
	return s.IssuerKeys.Rotate(ctx)
}

// isPEM tells a -Certificate value that is the certificate itself from a
// path, which only the shell reads (cmdlet.ParamSpec.IsContent).
func isPEM(v string) bool { return strings.Contains(v, "-----BEGIN") }

// readCertificate checks that PEM text holds one X.509 certificate. It
// never reads a file: the admin service takes the certificate itself, so
// that no front end can make the server read a path a caller names.
func readCertificate(v string) (string, error) {
	block, _ := pem.Decode([]byte(v))
	if block == nil || block.Type != "CERTIFICATE" {
		return "", invalidValue("Certificate", firstLine(v), "give a PEM certificate (-----BEGIN CERTIFICATE-----)")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return "", invalidValue("Certificate", firstLine(v), err.Error())
	}
	return string(pem.EncodeToMemory(block)), nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
