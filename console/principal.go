package console

import (
	"context"
	"slices"
)

// The roles a user may hold.
const (
	// RoleAdmin manages users, cameras and the config, and sees everything.
	RoleAdmin = "admin"
	// RoleOperator watches the wall and handles alerts.
	RoleOperator = "operator"
	// RoleGuard receives and acknowledges the alerts of their own posts.
	RoleGuard = "guard"
	// RolePlanner reads history and heatmaps, exports, and backtests rules.
	RolePlanner = "planner"
	// RoleViewer watches the wall, read-only.
	RoleViewer = "viewer"
)

// Principal is who a request comes from, once authenticated.
type Principal struct {
	// User is the user name.
	User string
	// Role is one of the Role constants.
	Role string
	// Posts are the areas a guard answers for.
	Posts []string
	// Cookie is true for a browser session (which needs a CSRF token on
	// changes), false for a bearer token.
	Cookie bool
	// Token is the ID of the API token the request came with; 0 for a
	// session. The token's role is Role, its scopes are checked by
	// Auth.Require.
	Token int64
}

// Is reports whether the principal holds one of the roles.
func (p Principal) Is(roles ...string) bool { return slices.Contains(roles, p.Role) }

// Covers reports whether an alert for these posts is the principal's
// business: everyone's but a guard's, whose only when a post is theirs.
func (p Principal) Covers(posts []string) bool {
	if p.Role != RoleGuard {
		return true
	}
	for _, a := range posts {
		if slices.Contains(p.Posts, a) {
			return true
		}
	}
	return false
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal a request was authenticated as.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
