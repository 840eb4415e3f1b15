package identity

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
	"github.com/apiplatform/platform/server/platform/page"
	"github.com/apiplatform/platform/server/platform/text"
)

// errSuspended answers a suspended account's login or refresh.
func errSuspended() error {
	return apierr.PermissionDenied("this account is suspended")
}

// adminTarget loads the account an admin call is about.
func (s *Service) adminTarget(ctx context.Context, userID string) (User, error) {
	if _, err := uuid.Parse(userID); err != nil {
		return User{}, apierr.InvalidArgument("user_id", "must be a user id (a UUID)")
	}
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return User{}, apierr.FromStorage(ctx, err, "user not found")
	}
	return u, nil
}

// SuspendUser implements IdentityService: the suspension is stored, then
// every session of the account ends on every replica (the user revocation
// also drops its API keys from every cache; their next lookup sees the
// suspension).
func (s *Service) SuspendUser(ctx context.Context, req *identityv1.SuspendUserRequest) (*identityv1.SuspendUserResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetUserId() == p.UserID {
		return nil, apierr.FailedPrecondition("an admin cannot suspend themselves", "SELF_SUSPENSION")
	}
	u, err := s.setSuspended(ctx, req.GetUserId(), true)
	if err != nil {
		return nil, err
	}
	return &identityv1.SuspendUserResponse{User: userProto(u)}, nil
}

// ReinstateUser implements IdentityService.
func (s *Service) ReinstateUser(ctx context.Context, req *identityv1.ReinstateUserRequest) (*identityv1.ReinstateUserResponse, error) {
	u, err := s.setSuspended(ctx, req.GetUserId(), false)
	if err != nil {
		return nil, err
	}
	return &identityv1.ReinstateUserResponse{User: userProto(u)}, nil
}

func (s *Service) setSuspended(ctx context.Context, userID string, suspended bool) (User, error) {
	u, err := s.adminTarget(ctx, userID)
	if err != nil {
		return User{}, err
	}
	u.Suspended = suspended
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return User{}, apierr.FromStorage(ctx, err, "user not found")
	}
	if suspended {
		if err := s.endUserSessions(ctx, u.ID); err != nil {
			return User{}, apierr.FromStorage(ctx, err, "")
		}
	}
	return u, nil
}

// SetUserRole implements IdentityService. A role change ends the account's
// sessions everywhere, like a promotion at start: a token must not carry a
// role its account no longer has (or gain one it was not issued with).
func (s *Service) SetUserRole(ctx context.Context, req *identityv1.SetUserRoleRequest) (*identityv1.SetUserRoleResponse, error) {
	p, err := auth.Require(ctx)
	if err != nil {
		return nil, err
	}
	var role Role
	switch req.GetRole() {
	case identityv1.Role_ROLE_USER:
		role = RoleUser
	case identityv1.Role_ROLE_ADMIN:
		role = RoleAdmin
	default:
		return nil, apierr.InvalidArgument("role", "must be ROLE_USER or ROLE_ADMIN")
	}
	if req.GetUserId() == p.UserID && role != RoleAdmin {
		return nil, apierr.FailedPrecondition("an admin cannot demote themselves", "SELF_DEMOTION")
	}
	u, err := s.adminTarget(ctx, req.GetUserId())
	if err != nil {
		return nil, err
	}
	if u.Guest && role == RoleAdmin {
		return nil, apierr.FailedPrecondition("a guest cannot be an admin; it must register first", "GUEST_ACCOUNT")
	}
	if u.Role != role {
		u.Role = role
		if err := s.store.UpdateUser(ctx, u); err != nil {
			return nil, apierr.FromStorage(ctx, err, "user not found")
		}
		if err := s.endUserSessions(ctx, u.ID); err != nil {
			return nil, apierr.FromStorage(ctx, err, "")
		}
	}
	return &identityv1.SetUserRoleResponse{User: userProto(u)}, nil
}

// ListUsers implements IdentityService. Usernames are stored lower-case,
// so lower-casing the query makes the prefix match case-insensitive.
func (s *Service) ListUsers(ctx context.Context, req *identityv1.ListUsersRequest) (*identityv1.ListUsersResponse, error) {
	query := strings.ToLower(req.GetQuery())
	if utf8.RuneCountInString(query) > 32 {
		return nil, apierr.InvalidArgument("query", "must be at most 32 characters")
	}
	// PostgreSQL refuses a NUL in a LIKE pattern with an error (a 500);
	// no username holds a control character anyway.
	if p := text.Problem(query); p != "" {
		return nil, apierr.InvalidArgument("query", p)
	}
	size, err := page.Size(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	at, key, ok, err := page.Parse(req.GetPageToken(), func(k string) bool { _, err := uuid.Parse(k); return err == nil })
	if err != nil {
		return nil, err
	}
	var after *UserCursor
	if ok {
		after = &UserCursor{CreatedAt: at, ID: key}
	}
	// One extra row tells whether there is a next page.
	rows, err := s.store.ListUsers(ctx, query, after, size+1)
	if err != nil {
		return nil, apierr.FromStorage(ctx, err, "")
	}
	resp := &identityv1.ListUsersResponse{}
	rows, resp.NextPageToken = page.Trim(rows, size, func(u User) (time.Time, string) { return u.CreatedAt, u.ID })
	for _, u := range rows {
		resp.Users = append(resp.Users, userProto(u))
	}
	return resp, nil
}
