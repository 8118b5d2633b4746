package auth

import (
	"testing"

	"github.com/emersion/go-smtp"
)

func TestParseTokenMessages(t *testing.T) {
	for _, tt := range []struct {
		name        string
		parse       func([]byte) (string, string, bool)
		in          string
		user, token string
		ok          bool
	}{
		{"xoauth2", ParseXOAuth2, "user=sean@contoso.com\x01auth=Bearer eyJ.a.b\x01\x01", "sean@contoso.com", "eyJ.a.b", true},
		{"xoauth2 lower-case scheme", ParseXOAuth2, "user=u@c\x01auth=bearer t\x01\x01", "u@c", "t", true},
		{"xoauth2 no user", ParseXOAuth2, "auth=Bearer t\x01\x01", "", "", false},
		{"xoauth2 no terminator", ParseXOAuth2, "user=u@c\x01auth=Bearer t", "", "", false},
		{"xoauth2 basic scheme", ParseXOAuth2, "user=u@c\x01auth=Basic dTpw\x01\x01", "", "", false},
		{"oauthbearer", ParseOAuthBearer, "n,a=sean@contoso.com,\x01host=mail\x01port=587\x01auth=Bearer tok\x01\x01", "sean@contoso.com", "tok", true},
		{"oauthbearer no authzid", ParseOAuthBearer, "n,,\x01auth=Bearer tok\x01\x01", "", "tok", true},
		{"oauthbearer escaped", ParseOAuthBearer, "n,a=a=2Cb=3Dc@x,\x01auth=Bearer tok\x01\x01", "a,b=c@x", "tok", true},
		{"oauthbearer bad escape", ParseOAuthBearer, "n,a=a=ZZ@x,\x01auth=Bearer tok\x01\x01", "", "", false},
		{"oauthbearer channel binding", ParseOAuthBearer, "p=tls-unique,,\x01auth=Bearer tok\x01\x01", "", "", false},
		{"oauthbearer no token", ParseOAuthBearer, "n,,\x01host=x\x01\x01", "", "", false},
		{"oauthbearer the error answer", ParseOAuthBearer, "\x01", "", "", false},
	} {
		user, token, ok := tt.parse([]byte(tt.in))
		if ok != tt.ok || user != tt.user || token != tt.token {
			t.Errorf("%s: got %q %q %v", tt.name, user, token, ok)
		}
	}
}

// The exchanges real clients run: an initial response or an empty
// challenge; on a refused token the JSON challenge, then the 535 whatever
// the client answers (msmtp: empty; curl: ^A).
func TestTokenServerExchanges(t *testing.T) {
	refused := &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 3}, Message: "Authentication unsuccessful"}
	check := func(user, token string) error {
		if token == "good" {
			return nil
		}
		return refused
	}
	s := NewXOAuth2Server(check)
	if ch, done, err := s.Next(nil); done || err != nil || len(ch) != 0 {
		t.Fatalf("no initial response: %q %v %v", ch, done, err)
	}
	if _, done, err := s.Next([]byte("user=u@c\x01auth=Bearer good\x01\x01")); !done || err != nil {
		t.Fatalf("good token: %v %v", done, err)
	}
	for _, answer := range [][]byte{{}, {1}} {
		s = NewOAuthBearerServer(check)
		ch, done, err := s.Next([]byte("n,a=u@c,\x01auth=Bearer bad\x01\x01"))
		if done || err != nil || string(ch) != string(oauthBearerChallenge) {
			t.Fatalf("bad token: %q %v %v", ch, done, err)
		}
		if _, done, err := s.Next(answer); !done || err != refused {
			t.Fatalf("after the challenge: %v %v", done, err)
		}
	}
	s = NewXOAuth2Server(check)
	if _, done, err := s.Next([]byte("garbage")); !done || err != ErrMalformedCredentials {
		t.Fatalf("garbage: %v %v", done, err)
	}
}

func FuzzParseXOAuth2(f *testing.F) {
	f.Add([]byte("user=u@c\x01auth=Bearer t\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if u, tok, ok := ParseXOAuth2(b); ok && (u == "" || tok == "") {
			t.Fatal("accepted without user or token")
		}
	})
}

func FuzzParseOAuthBearer(f *testing.F) {
	f.Add([]byte("n,a=u@c,\x01auth=Bearer t\x01\x01"))
	f.Add([]byte("n,,\x01host=h\x01port=1\x01auth=Bearer t\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, tok, ok := ParseOAuthBearer(b); ok && tok == "" {
			t.Fatal("accepted without token")
		}
	})
}
