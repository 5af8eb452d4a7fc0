package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Role is what a member may do in a namespace. Each role allows what the one below it
// allows: read < write < admin.
type Role string

// The roles a namespace's members hold, as the gateway checks them on every request.
const (
	// RoleRead sees repositories, rules, builds and logs.
	RoleRead Role = "read"
	// RoleWrite also creates and edits repositories and build rules, builds now and cancels.
	RoleWrite Role = "write"
	// RoleAdmin also manages members.
	RoleAdmin Role = "admin"
)

// rank orders the roles; unknown roles, including "", rank 0 and allow nothing.
func (r Role) rank() int {
	switch r {
	case RoleRead:
		return 1
	case RoleWrite:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is one of RoleRead, RoleWrite and RoleAdmin.
func (r Role) Valid() bool { return r.rank() > 0 }

// Allows reports whether a member with role r may do what needs role need. The empty
// role (no membership) allows nothing, and nothing allows an unknown need.
func (r Role) Allows(need Role) bool {
	return r.Valid() && need.Valid() && r.rank() >= need.rank()
}

// Namespace groups image repositories and the members who may use them.
type Namespace struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Repository is an image repository; its images are pushed as REGISTRY/namespace/name.
type Repository struct {
	ID        int64     `json:"id"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateNamespace adds a namespace whose admin is the user creatorID, both in one
// transaction.
func (s *Store) CreateNamespace(ctx context.Context, name string, creatorID int64) (Namespace, error) {
	if err := ValidName(name); err != nil {
		return Namespace{}, fmt.Errorf("creating namespace: %w", err)
	}
	ns := Namespace{Name: name, CreatedAt: now()}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var exists int
		err := s.queryRow(ctx, tx, "SELECT 1 FROM users WHERE id = ?", creatorID).Scan(&exists)
		if err != nil {
			return fmt.Errorf("creator %d: %w", creatorID, classify(err))
		}
		err = s.queryRow(ctx, tx, "INSERT INTO namespaces (name, created_at) VALUES (?, ?) RETURNING id",
			ns.Name, ns.CreatedAt).Scan(&ns.ID)
		if err != nil {
			return classify(err)
		}
		_, err = s.exec(ctx, tx, "INSERT INTO members (namespace_id, user_id, role) VALUES (?, ?, ?)",
			ns.ID, creatorID, string(RoleAdmin))
		if err != nil {
			return fmt.Errorf("adding creator as admin: %w", classify(err))
		}
		return nil
	})
	if err != nil {
		return Namespace{}, fmt.Errorf("creating namespace %q: %w", name, err)
	}
	return ns, nil
}

// GetNamespace returns the namespace called name, or an error wrapping ErrNotFound.
func (s *Store) GetNamespace(ctx context.Context, name string) (Namespace, error) {
	ns, err := s.namespaceByName(ctx, s.db, name)
	if err != nil {
		return Namespace{}, fmt.Errorf("getting namespace %q: %w", name, err)
	}
	return ns, nil
}

// namespaceByName looks a namespace up inside or outside a transaction; a missing one is
// ErrNotFound.
func (s *Store) namespaceByName(ctx context.Context, q queryer, name string) (Namespace, error) {
	ns := Namespace{}
	err := s.queryRow(ctx, q, "SELECT id, name, created_at FROM namespaces WHERE name = ?", name).
		Scan(&ns.ID, &ns.Name, timeColumn{&ns.CreatedAt})
	if err != nil {
		return Namespace{}, classify(err)
	}
	return ns, nil
}

// SetMember gives the user userName the role role in the namespace ns, replacing the role
// the user had there.
func (s *Store) SetMember(ctx context.Context, ns, userName string, role Role) error {
	if !role.Valid() {
		return fmt.Errorf("setting role of %q in %q: unknown role %q: %w", userName, ns, role, ErrInvalid)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		n, err := s.lockNamespace(ctx, tx, ns)
		if err != nil {
			return fmt.Errorf("namespace: %w", err)
		}
		u, err := s.userByName(ctx, tx, userName)
		if err != nil {
			return fmt.Errorf("user: %w", err)
		}
		if role != RoleAdmin {
			if err := s.keepAnAdmin(ctx, tx, n, u); err != nil {
				return err
			}
		}
		_, err = s.exec(ctx, tx, `INSERT INTO members (namespace_id, user_id, role) VALUES (?, ?, ?)
ON CONFLICT (namespace_id, user_id) DO UPDATE SET role = excluded.role`, n.ID, u.ID, string(role))
		return classify(err)
	})
	if err != nil {
		return fmt.Errorf("setting role of %q in %q: %w", userName, ns, err)
	}
	return nil
}

// MemberRole returns the role of the user userID in the namespace ns: "" with a nil error
// when the user is not a member, an error wrapping ErrNotFound when there is no such
// namespace. Site admins are not members by right: the caller decides what they may do.
func (s *Store) MemberRole(ctx context.Context, ns string, userID int64) (Role, error) {
	var (
		nsID int64
		role sql.NullString
	)
	err := s.queryRow(ctx, s.db, `SELECT n.id, m.role FROM namespaces n
LEFT JOIN members m ON m.namespace_id = n.id AND m.user_id = ?
WHERE n.name = ?`, userID, ns).Scan(&nsID, &role)
	if err != nil {
		return "", fmt.Errorf("getting role in namespace %q: %w", ns, classify(err))
	}
	return Role(role.String), nil
}

// CreateRepository adds the image repository name to the namespace ns.
func (s *Store) CreateRepository(ctx context.Context, ns, name string) (Repository, error) {
	if err := ValidName(name); err != nil {
		return Repository{}, fmt.Errorf("creating repository: %w", err)
	}
	r := Repository{Namespace: ns, Name: name, CreatedAt: now()}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		n, err := s.namespaceByName(ctx, tx, ns)
		if err != nil {
			return fmt.Errorf("namespace: %w", err)
		}
		err = s.queryRow(ctx, tx, "INSERT INTO repositories (namespace_id, name, created_at) VALUES (?, ?, ?) RETURNING id",
			n.ID, r.Name, r.CreatedAt).Scan(&r.ID)
		return classify(err)
	})
	if err != nil {
		return Repository{}, fmt.Errorf("creating repository %s/%s: %w", ns, name, err)
	}
	return r, nil
}

// GetRepository returns the repository name of the namespace ns, or an error wrapping
// ErrNotFound.
func (s *Store) GetRepository(ctx context.Context, ns, name string) (Repository, error) {
	r, err := s.repositoryByName(ctx, s.db, ns, name)
	if err != nil {
		return Repository{}, fmt.Errorf("getting repository %s/%s: %w", ns, name, err)
	}
	return r, nil
}

// repositoryByName looks a repository up inside or outside a transaction; a missing one
// is ErrNotFound.
func (s *Store) repositoryByName(ctx context.Context, q queryer, ns, name string) (Repository, error) {
	r := Repository{}
	err := s.queryRow(ctx, q, `SELECT r.id, n.name, r.name, r.created_at FROM repositories r
JOIN namespaces n ON n.id = r.namespace_id
WHERE n.name = ? AND r.name = ?`, ns, name).Scan(&r.ID, &r.Namespace, &r.Name, timeColumn{&r.CreatedAt})
	if err != nil {
		return Repository{}, classify(err)
	}
	return r, nil
}

// ListRepositories returns the repositories of the namespace ns by name, or an error
// wrapping ErrNotFound when there is no such namespace.
func (s *Store) ListRepositories(ctx context.Context, ns string) ([]Repository, error) {
	var repos []Repository
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.namespaceByName(ctx, tx, ns); err != nil {
			return fmt.Errorf("namespace: %w", err)
		}
		rows, err := s.query(ctx, tx, `SELECT r.id, n.name, r.name, r.created_at FROM repositories r
JOIN namespaces n ON n.id = r.namespace_id
WHERE n.name = ? ORDER BY r.name`, ns)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r := Repository{}
			if err := rows.Scan(&r.ID, &r.Namespace, &r.Name, timeColumn{&r.CreatedAt}); err != nil {
				return err
			}
			repos = append(repos, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("listing repositories of %q: %w", ns, err)
	}
	if repos == nil {
		repos = []Repository{}
	}
	return repos, nil
}

// lockNamespace looks the namespace name up inside tx and holds it until tx ends, so that
// changes to its members take turns: two admins removing each other at once cannot both see
// the other one left. SQLite's transactions already take turns (BEGIN IMMEDIATE takes the
// write lock); PostgreSQL's READ COMMITTED ones need the row lock.
func (s *Store) lockNamespace(ctx context.Context, tx *sql.Tx, name string) (Namespace, error) {
	q := "SELECT id, name, created_at FROM namespaces WHERE name = ?"
	if s.dialect == dialectPostgres {
		q += " FOR UPDATE"
	}
	ns := Namespace{}
	err := s.queryRow(ctx, tx, q, name).Scan(&ns.ID, &ns.Name, timeColumn{&ns.CreatedAt})
	if err != nil {
		return Namespace{}, classify(err)
	}
	return ns, nil
}

// keepAnAdmin fails with ErrLastAdmin when u is the one admin of n, inside a transaction
// that holds n (lockNamespace).
func (s *Store) keepAnAdmin(ctx context.Context, tx *sql.Tx, n Namespace, u User) error {
	var role sql.NullString
	err := s.queryRow(ctx, tx, "SELECT role FROM members WHERE namespace_id = ? AND user_id = ?", n.ID, u.ID).Scan(&role)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return classify(err)
	}
	if Role(role.String) != RoleAdmin {
		return nil
	}
	var admins int
	if err := s.queryRow(ctx, tx, "SELECT COUNT(*) FROM members WHERE namespace_id = ? AND role = ?",
		n.ID, string(RoleAdmin)).Scan(&admins); err != nil {
		return classify(err)
	}
	if admins <= 1 {
		return fmt.Errorf("%w: %q is the last admin of namespace %q; make another member admin first", ErrLastAdmin, u.Name, n.Name)
	}
	return nil
}

// RemoveMember takes every role in the namespace ns away from the user userName. The error
// wraps ErrNotFound when there is no such namespace or the user is no member, and ErrLastAdmin
// when the user is its last admin. The check and the removal are one transaction holding the
// namespace, so concurrent removals never leave it without an admin.
func (s *Store) RemoveMember(ctx context.Context, ns, userName string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		n, err := s.lockNamespace(ctx, tx, ns)
		if err != nil {
			return fmt.Errorf("namespace: %w", err)
		}
		u, err := s.userByName(ctx, tx, userName)
		if err != nil {
			return fmt.Errorf("member: %w", err)
		}
		if err := s.keepAnAdmin(ctx, tx, n, u); err != nil {
			return err
		}
		res, err := s.exec(ctx, tx, "DELETE FROM members WHERE namespace_id = ? AND user_id = ?", n.ID, u.ID)
		if err != nil {
			return classify(err)
		}
		if k, err := res.RowsAffected(); err != nil || k == 0 {
			return fmt.Errorf("member: %w", ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("removing %q from %q: %w", userName, ns, err)
	}
	return nil
}

// Member is a user's role in a namespace.
type Member struct {
	User     string `json:"user"`
	Role     Role   `json:"role"`
	Disabled bool   `json:"disabled"`
}

// ListMembers returns the members of the namespace ns by name, or an error wrapping
// ErrNotFound when there is no such namespace.
func (s *Store) ListMembers(ctx context.Context, ns string) ([]Member, error) {
	members := []Member{}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		n, err := s.namespaceByName(ctx, tx, ns)
		if err != nil {
			return fmt.Errorf("namespace: %w", err)
		}
		rows, err := s.query(ctx, tx, `SELECT u.name, m.role, u.disabled FROM members m
JOIN users u ON u.id = m.user_id WHERE m.namespace_id = ? ORDER BY u.name`, n.ID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m Member
			if err := rows.Scan(&m.User, &m.Role, &m.Disabled); err != nil {
				return err
			}
			members = append(members, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("listing members of %q: %w", ns, err)
	}
	return members, nil
}

// Membership is a namespace and a user's role in it.
type Membership struct {
	Namespace string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// UserNamespaces returns the namespaces the user userID is a member of, by name, with the
// role held in each.
func (s *Store) UserNamespaces(ctx context.Context, userID int64) ([]Membership, error) {
	return s.memberships(ctx, `SELECT n.name, m.role, n.created_at FROM members m
JOIN namespaces n ON n.id = m.namespace_id WHERE m.user_id = ? ORDER BY n.name`, userID)
}

// AllNamespaces returns every namespace by name, each with the role the user userID holds
// there ("" where none): what a site admin sees.
func (s *Store) AllNamespaces(ctx context.Context, userID int64) ([]Membership, error) {
	return s.memberships(ctx, `SELECT n.name, COALESCE(m.role, ''), n.created_at FROM namespaces n
LEFT JOIN members m ON m.namespace_id = n.id AND m.user_id = ? ORDER BY n.name`, userID)
}

func (s *Store) memberships(ctx context.Context, q string, userID int64) ([]Membership, error) {
	rows, err := s.query(ctx, s.db, q, userID)
	if err != nil {
		return nil, fmt.Errorf("listing namespaces of user %d: %w", userID, classify(err))
	}
	defer rows.Close()
	out := []Membership{}
	for rows.Next() {
		var m Membership
		if err := rows.Scan(&m.Namespace, &m.Role, timeColumn{&m.CreatedAt}); err != nil {
			return nil, fmt.Errorf("listing namespaces of user %d: %w", userID, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing namespaces of user %d: %w", userID, err)
	}
	return out, nil
}

// DeleteRepository removes the repository name of the namespace ns with its rules, and returns
// the rules it removed (with their hooks, for the caller to remove from the providers). The
// error wraps ErrNotFound when there is no such repository.
func (s *Store) DeleteRepository(ctx context.Context, ns, name string) ([]Rule, error) {
	var rules []Rule
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		p, err := s.repositoryByName(ctx, tx, ns, name)
		if err != nil {
			return err
		}
		rows, err := s.query(ctx, tx, "SELECT "+ruleColumns+" WHERE r.repository_id = ? ORDER BY r.seq", p.ID)
		if err != nil {
			return err
		}
		for rows.Next() {
			r, err := s.scanRule(rows)
			if err != nil {
				rows.Close()
				return err
			}
			rules = append(rules, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// The rules go with it (ON DELETE CASCADE).
		_, err = s.exec(ctx, tx, "DELETE FROM repositories WHERE id = ?", p.ID)
		return classify(err)
	})
	if err != nil {
		return nil, fmt.Errorf("deleting repository %s/%s: %w", ns, name, err)
	}
	if rules == nil {
		rules = []Rule{}
	}
	return rules, nil
}
