package identity

import (
	"context"

	"github.com/google/uuid"

	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	"github.com/apiplatform/platform/server/platform/apierr"
	"github.com/apiplatform/platform/server/platform/auth"
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
