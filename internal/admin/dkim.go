package admin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/dkimkey"
)

// DkimSigningConfigs lists the organization's DKIM configurations, or the
// one of the named domain.
func (s *Service) DkimSigningConfigs(identity string) ([]*directory.DkimSigningConfig, error) {
	org := s.org()
	var out []*directory.DkimSigningConfig
	for _, d := range s.Dir.Load().Contents().Dkim {
		if d.OrgID == org.ID && (identity == "" || strings.EqualFold(d.Domain, identity)) {
			out = append(out, d)
		}
	}
	if identity != "" && len(out) == 0 {
		return nil, NotFound(identity)
	}
	return out, nil
}

// NewDkimSigningConfig makes both selectors' keys for an accepted domain,
// selector1 active, as Exchange does. keySize 0 means 2048; algorithm ""
// means RSA.
func (s *Service) NewDkimSigningConfig(ctx context.Context, domain string, enabled bool, algorithm string, keySize int) (*directory.DkimSigningConfig, error) {
	if algorithm == "" {
		algorithm = dkimkey.RSA
	}
	if keySize == 0 {
		keySize = 2048
	}
	if algorithm == dkimkey.Ed25519 {
		keySize = 256
	}
	d := &directory.DkimSigningConfig{Enabled: enabled, Algorithm: algorithm, KeySize: keySize, ActiveSelector: 1}
	err := s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		name, err := address.NormalizeDomain(domain)
		if err != nil {
			return invalidValue("DomainName", domain, "give an accepted domain")
		}
		if ad := dir.AcceptedDomain(name); ad == nil || ad.OrgID != org.ID {
			return fmt.Errorf("The domain '%s' isn't an accepted domain of this organization; DKIM signing needs one (New-AcceptedDomain).", name)
		}
		if dir.DkimSigningConfig(name) != nil {
			return alreadyExists("DKIM signing configuration", name)
		}
		d.OrgID, d.Domain = org.ID, name
		for sel := 1; sel <= 2; sel++ {
			if err := s.newKey(d, sel); err != nil {
				return err
			}
		}
		d.KeyCreationTime = time.Now().UTC()
		return storeError(s.Store.SaveDkimSigningConfig(ctx, d), "DKIM signing configuration", name)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// newKey generates the key of selector sel (1 or 2) and seals it.
func (s *Service) newKey(d *directory.DkimSigningConfig, sel int) error {
	bits := d.KeySize
	if d.Algorithm == dkimkey.Ed25519 {
		bits = 0
	}
	priv, record, err := dkimkey.Generate(d.Algorithm, bits)
	if err != nil {
		return fmt.Errorf("DKIM signing configuration '%s': %w", d.Domain, err)
	}
	sealed, err := s.seal(priv)
	if err != nil {
		return err
	}
	if sel == 1 {
		d.Selector1KeySealed, d.Selector1PublicKey = sealed, record
	} else {
		d.Selector2KeySealed, d.Selector2PublicKey = sealed, record
	}
	return nil
}

// SetDkimSigningConfig turns signing on or off.
func (s *Service) SetDkimSigningConfig(ctx context.Context, identity string, enabled *bool) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		ds, err := s.DkimSigningConfigs(identity)
		if err != nil {
			return err
		}
		d := *ds[0]
		if enabled != nil {
			d.Enabled = *enabled
		}
		return storeError(s.Store.SaveDkimSigningConfig(ctx, &d), "DKIM signing configuration", d.Domain)
	})
}

// RotateDkimSigningConfig switches signing to the other selector, whose
// key has been published since it was made, and gives the selector just
// retired a new key (of keySize bits, or the current size when 0) to
// publish before the next rotation. Exchange waits four days before the
// new selector signs; Postern switches at once, because the other
// selector's record is already in DNS.
func (s *Service) RotateDkimSigningConfig(ctx context.Context, identity string, keySize int) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		ds, err := s.DkimSigningConfigs(identity)
		if err != nil {
			return err
		}
		d := *ds[0]
		if keySize != 0 && d.Algorithm == dkimkey.RSA {
			d.KeySize = keySize
		}
		retired := d.ActiveSelector
		d.ActiveSelector = 3 - retired
		if err := s.newKey(&d, retired); err != nil {
			return err
		}
		d.RotateOnDate = time.Now().UTC()
		d.KeyCreationTime = d.RotateOnDate
		return storeError(s.Store.SaveDkimSigningConfig(ctx, &d), "DKIM signing configuration", d.Domain)
	})
}
