package identity

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/clientaddr"
	"github.com/apiplatform/platform/server/platform/password"
	"github.com/apiplatform/platform/server/platform/storeerr"
	"github.com/apiplatform/platform/server/platform/text"
	"github.com/apiplatform/platform/server/platform/wire"
)

// CreateGuest implements IdentityService.
func (s *Service) CreateGuest(ctx context.Context, _ *identityv1.CreateGuestRequest) (*identityv1.CreateGuestResponse, error) {
	if err := s.limit(ctx, "guest:addr:"+clientaddr.Key(wire.FromContext(ctx).Addr), s.cfg.GuestLimit); err != nil {
		return nil, err
	}
	u := User{ID: uuid.NewString(), Guest: true, Role: RoleUser, CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	tokens, err := s.startSession(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return &identityv1.CreateGuestResponse{User: userProto(u), Session: tokens}, nil
}

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,32}$`)

func validateCredentials(username, password string) error {
	var v apierr.Validator
	v.Check(usernameRE.MatchString(username), "username", "must be 3 to 32 characters of letters, digits, '_', '-' and '.'")
	v.Check(passwordLengthOK(password, 8), "password", "must be 8 to 128 characters")
	if p := text.Problem(password); p != "" {
		v.Check(false, "password", p)
	}
	return v.Err()
}

// SignUp creates an account, or upgrades the calling guest in place
// (IdentityService.Register). The per-address limit and the
// CAPTCHA come before the (costly) hash.
func (s *Service) SignUp(ctx context.Context, req *identityv1.RegisterRequest) (*identityv1.RegisterResponse, error) {
	if err := validateCredentials(req.GetUsername(), req.GetPassword()); err != nil {
		return nil, err
	}
	if err := s.limit(ctx, "register:addr:"+clientaddr.Key(wire.FromContext(ctx).Addr), s.cfg.RegisterLimit); err != nil {
		return nil, err
	}
	if err := s.checkCaptcha(ctx); err != nil {
		return nil, err
	}
	hash, err := password.Hash(ctx, req.GetPassword())
	if err != nil {
		return nil, password.Status(ctx, err)
	}
	name := strings.ToLower(req.GetUsername())
	var u User
	p, upgrade := auth.FromContext(ctx)
	upgrade = upgrade && p.Guest
	if upgrade {
		// Upgrade in place: the guest keeps its id and everything saved under it.
		if u, err = s.store.GetUser(ctx, p.UserID); err != nil {
			return nil, apierr.FromStorage(ctx, err, "user not found")
		}
		u.Username, u.Guest, u.PasswordHash = name, false, hash
		err = s.store.UpdateUser(ctx, u)
	} else {
		u = User{ID: uuid.NewString(), Username: name, Role: RoleUser, PasswordHash: hash, CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
		err = s.store.CreateUser(ctx, u)
	}
	if errors.Is(err, storeerr.ErrConflict) {
		return nil, apierr.AlreadyExists("username is taken", "USERNAME_TAKEN")
	}
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "user not found")
	}
	if upgrade {
		// The guest's old tokens must not outlive its upgrade.
		if err := s.endUserSessions(ctx, u.ID); err != nil {
			return nil, apierr.FromStorage(ctx, err, "")
		}
	}
	tokens, err := s.startSession(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return &identityv1.RegisterResponse{User: userProto(u), Session: tokens}, nil
}

// checkCaptcha applies the registration CAPTCHA hook, when configured. A
// verifier that cannot answer refuses the registration (UNAVAILABLE): an
// outage must not let bots in.
func (s *Service) checkCaptcha(ctx context.Context) error {
	if s.cfg.Captcha == nil {
		return nil
	}
	token := wire.FromContext(ctx).CaptchaToken
	if token == "" || len(token) > 4096 {
		return apierr.InvalidArgument("captcha_token", "a CAPTCHA token (X-Captcha-Token header or x-captcha-token metadata) of at most 4096 bytes is required")
	}
	ok, err := s.cfg.Captcha.Verify(ctx, token, wire.FromContext(ctx).Addr)
	if err != nil {
		return apierr.Unavailable("the CAPTCHA could not be checked; retry shortly", time.Second)
	}
	if !ok {
		return apierr.PermissionDenied("the CAPTCHA was not solved")
	}
	return nil
}

// Login implements IdentityService.
func (s *Service) Login(ctx context.Context, req *identityv1.LoginRequest) (*identityv1.LoginResponse, error) {
	var v apierr.Validator
	v.Check(req.GetUsername() != "" && len(req.GetUsername()) <= 32, "username", "is required (at most 32 characters)")
	// Before the lookup: PostgreSQL answers a NUL in a query with an error.
	v.Check(text.Problem(req.GetUsername()) == "", "username", "must not contain control characters")
	v.Check(passwordLengthOK(req.GetPassword(), 1), "password", "is required (at most 128 characters)")
	if err := v.Err(); err != nil {
		return nil, err
	}
	name := strings.ToLower(req.GetUsername())
	addr := clientaddr.Key(wire.FromContext(ctx).Addr)
	if err := s.limit(ctx, "login:addr:"+addr, s.cfg.LoginAddrLimit); err != nil {
		return nil, err
	}
	if err := s.limit(ctx, "login:user:"+name+":"+addr, s.cfg.LoginLimit); err != nil {
		return nil, err
	}
	u, err := s.store.GetUserByUsername(ctx, name)
	if err != nil && !errors.Is(err, storeerr.ErrNotFound) {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	hash := u.PasswordHash
	if err != nil || hash == "" {
		hash = password.Dummy
	}
	ok, herr := password.Check(ctx, hash, req.GetPassword())
	if herr != nil {
		return nil, password.Status(ctx, herr)
	}
	if err != nil || !ok || u.PasswordHash == "" {
		return nil, apierr.Unauthenticated("invalid username or password")
	}
	if u.Suspended {
		return nil, errSuspended() // told only to whoever knows the password
	}
	tokens, err := s.startSession(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return &identityv1.LoginResponse{User: userProto(u), Session: tokens}, nil
}

// EnsureAdmin makes username an admin with password, creating the account
// if needed. The server calls it at start when told an admin account. A
// promotion (or a new password) ends the account's existing sessions:
// tokens issued to the ordinary user must not carry admin rights.
func (s *Service) EnsureAdmin(ctx context.Context, username, secret string) error {
	if err := validateCredentials(username, secret); err != nil {
		return err
	}
	name := strings.ToLower(username)
	u, err := s.store.GetUserByUsername(ctx, name)
	if errors.Is(err, storeerr.ErrNotFound) {
		hash, err := password.Hash(ctx, secret)
		if err != nil {
			return err
		}
		u = User{ID: uuid.NewString(), Username: name, Role: RoleAdmin, PasswordHash: hash, CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
		if err := s.store.CreateUser(ctx, u); !errors.Is(err, storeerr.ErrConflict) {
			return err
		}
		// Another replica created it at the same moment: update it below.
		u, err = s.store.GetUserByUsername(ctx, name)
	}
	if err != nil {
		return err
	}
	same := false
	if u.PasswordHash != "" {
		if same, err = password.Check(ctx, u.PasswordHash, secret); err != nil {
			return err
		}
	}
	if u.Role == RoleAdmin && !u.Guest && same {
		return nil // already so: its sessions stay
	}
	if !same {
		if u.PasswordHash, err = password.Hash(ctx, secret); err != nil {
			return err
		}
	}
	u.Role, u.Guest = RoleAdmin, false
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return err
	}
	return s.endUserSessions(ctx, u.ID)
}
