package natstest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Operator holds the identities of a server started WithOperator.
type Operator struct {
	OperatorJWT string
	AccountPub  string // the JetStream-enabled account the user belongs to
	CredsFile   string // the user's .creds file (JWT + seed)

	operator   *jwt.OperatorClaims
	accountJWT string
	systemPub  string
	systemJWT  string
}

func newOperator(dir string) (*Operator, error) {
	okp, err := nkeys.CreateOperator()
	if err != nil {
		return nil, err
	}
	opub, err := okp.PublicKey()
	if err != nil {
		return nil, err
	}
	oc := jwt.NewOperatorClaims(opub)
	oc.Name = "natstest"
	ojwt, err := oc.Encode(okp)
	if err != nil {
		return nil, fmt.Errorf("operator JWT: %w", err)
	}

	account := func(name string, js bool) (nkeys.KeyPair, string, string, error) {
		akp, err := nkeys.CreateAccount()
		if err != nil {
			return nil, "", "", err
		}
		apub, err := akp.PublicKey()
		if err != nil {
			return nil, "", "", err
		}
		ac := jwt.NewAccountClaims(apub)
		ac.Name = name
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{
				MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1,
			}
		}
		ajwt, err := ac.Encode(okp)
		if err != nil {
			return nil, "", "", fmt.Errorf("account JWT %s: %w", name, err)
		}
		return akp, apub, ajwt, nil
	}
	_, spub, sjwt, err := account("SYS", false)
	if err != nil {
		return nil, err
	}
	akp, apub, ajwt, err := account("APP", true)
	if err != nil {
		return nil, err
	}

	ukp, err := nkeys.CreateUser()
	if err != nil {
		return nil, err
	}
	upub, err := ukp.PublicKey()
	if err != nil {
		return nil, err
	}
	uc := jwt.NewUserClaims(upub)
	uc.Name = "app"
	ujwt, err := uc.Encode(akp)
	if err != nil {
		return nil, fmt.Errorf("user JWT: %w", err)
	}
	seed, err := ukp.Seed()
	if err != nil {
		return nil, err
	}
	creds, err := jwt.FormatUserConfig(ujwt, seed)
	if err != nil {
		return nil, err
	}
	credsFile := filepath.Join(dir, "user.creds")
	if err := os.WriteFile(credsFile, creds, 0o600); err != nil {
		return nil, err
	}
	return &Operator{
		OperatorJWT: ojwt,
		AccountPub:  apub,
		CredsFile:   credsFile,
		operator:    oc,
		accountJWT:  ajwt,
		systemPub:   spub,
		systemJWT:   sjwt,
	}, nil
}

func (op *Operator) configure(o *server.Options) {
	r := &server.MemAccResolver{}
	// Store only fails on an empty name.
	_ = r.Store(op.AccountPub, op.accountJWT)
	_ = r.Store(op.systemPub, op.systemJWT)
	o.TrustedOperators = []*jwt.OperatorClaims{op.operator}
	o.AccountResolver = r
	o.SystemAccount = op.systemPub
}

// NKeyUser creates a user nkey, writes its seed to a file in t.TempDir(), and
// returns the public key (for WithNKey) and the seed file (for clients).
func NKeyUser(t testing.TB) (publicKey, seedFile string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatalf("natstest: create nkey: %v", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatalf("natstest: nkey public key: %v", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatalf("natstest: nkey seed: %v", err)
	}
	seedFile = filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatalf("natstest: write seed: %v", err)
	}
	return pub, seedFile
}
