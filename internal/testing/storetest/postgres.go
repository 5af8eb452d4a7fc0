// Package storetest gives tests a PostgreSQL server to run against: a throwaway cluster
// made with the server binaries of Debian's postgresql package, or the server named by
// SLIPWAY_TEST_POSTGRES_URL. Each test gets a database of its own in it.
//
// In a package whose tests share one cluster:
//
//	var pg *storetest.Cluster
//
//	func TestMain(m *testing.M) {
//		os.Exit(storetest.RunMain(m, &pg))
//	}
//
//	func TestSomething(t *testing.T) {
//		url := pg.NewDatabase(t) // postgres://... of an empty database
//		...
//	}
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// EnvURL names the environment variable that points tests at an existing PostgreSQL
// server instead of a throwaway cluster. Its user must be allowed to create databases.
const EnvURL = "SLIPWAY_TEST_POSTGRES_URL"

// startTimeout bounds initdb plus the server's start.
const startTimeout = 60 * time.Second

// Cluster is a PostgreSQL server that tests create databases in.
type Cluster struct {
	// adminURL reaches the server's "postgres" database (or EnvURL's database) with a
	// user allowed to create databases.
	adminURL string
	// owned is set when the cluster was started here, and is stopped by Stop.
	owned *server
}

// server is a postgres process started by StartCluster, and its files.
type server struct {
	cmd     *exec.Cmd
	dir     string // holds data/, the socket and the log
	logPath string
	exited  chan struct{}
	waitErr error
}

// RunMain is a TestMain body: it starts a cluster, stores it in *c, runs the tests and
// stops the cluster, returning the exit code for os.Exit. When the cluster cannot start it
// prints why and returns 1: the tests fail, they are not skipped.
func RunMain(m *testing.M, c **Cluster) int {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	cl, err := StartCluster(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "storetest: %v\n", err)
		return 1
	}
	*c = cl
	code := m.Run()
	if err := cl.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "storetest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// StartCluster returns the server named by SLIPWAY_TEST_POSTGRES_URL when it is set, and
// otherwise makes a cluster in a temporary folder and starts it on a free loopback port.
// As root, initdb and postgres (which refuse to run as root) run as the postgres user the
// Debian package creates.
func StartCluster(ctx context.Context) (*Cluster, error) {
	if u := os.Getenv(EnvURL); u != "" {
		c := &Cluster{adminURL: u}
		if err := c.ping(ctx); err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", EnvURL, err)
		}
		return c, nil
	}
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	var lastErr error
	// A free port can be taken between finding it and postgres binding it; try again.
	for range 3 {
		srv, port, err := startServer(ctx, bin)
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		c := &Cluster{
			adminURL: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
			owned:    srv,
		}
		if err := c.waitReady(ctx); err != nil {
			_ = c.Stop()
			return nil, err
		}
		return c, nil
	}
	return nil, lastErr
}

// findBinaries returns the folder holding initdb and postgres: the newest of Debian's
// /usr/lib/postgresql/*/bin, else the folder of initdb on PATH.
func findBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isFile(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("postgresql server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin or on PATH: " +
		"install them (apt-get install postgresql) or set " + EnvURL + " to a server's URL")
}

func versionOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// credential returns who initdb and postgres run as: the postgres user when this process
// is root, nil (this process's user) otherwise.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("postgres refuses to run as root and there is no postgres user to run it as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parsing uid of postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parsing gid of postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// startServer runs initdb into a new temporary folder and starts postgres on it.
func startServer(ctx context.Context, bin string) (_ *server, port int, err error) {
	cred, err := credential()
	if err != nil {
		return nil, 0, err
	}
	dir, err := os.MkdirTemp("", "slipway-pg-")
	if err != nil {
		return nil, 0, fmt.Errorf("creating cluster folder: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, 0, fmt.Errorf("handing cluster folder to postgres: %w", err)
		}
	}
	dataDir := filepath.Join(dir, "data")
	logPath := filepath.Join(dir, "postgres.log")

	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, 0, fmt.Errorf("running initdb: %w\n%s", err, out)
	}

	port, err = freePort()
	if err != nil {
		return nil, 0, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, 0, fmt.Errorf("creating postgres log: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor
	// Durability is pointless for a cluster that lives as long as a test run.
	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", dataDir, "-k", dir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200")
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: cred,
		// A test binary killed outright does not leave the server running.
		Pdeathsig: syscall.SIGQUIT,
		Setpgid:   true,
	}
	srv := &server{cmd: cmd, dir: dir, logPath: logPath, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Linux sends Pdeathsig when the thread that forked the child ends, not the
		// process: keep this goroutine on its thread until postgres exits.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		srv.waitErr = cmd.Wait()
		close(srv.exited)
	}()
	if err := <-started; err != nil {
		return nil, 0, fmt.Errorf("starting postgres: %w", err)
	}
	return srv, port, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls the server until it answers, it exits, or ctx ends.
func (c *Cluster) waitReady(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := c.ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-c.owned.exited:
			return fmt.Errorf("postgres exited before accepting connections: %v\n%s", c.owned.waitErr, c.owned.logTail())
		case <-ctx.Done():
			return fmt.Errorf("waiting for postgres: %w (last error: %v)\n%s", ctx.Err(), err, c.owned.logTail())
		case <-tick.C:
		}
	}
}

func (c *Cluster) ping(ctx context.Context) error {
	db, err := sql.Open("pgx", c.adminURL)
	if err != nil {
		return err
	}
	defer db.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return db.PingContext(pctx)
}

func (s *server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// Stop stops a cluster StartCluster started (fast shutdown) and removes its files. For
// the server of SLIPWAY_TEST_POSTGRES_URL it does nothing.
func (c *Cluster) Stop() error {
	srv := c.owned
	if srv == nil {
		return nil
	}
	c.owned = nil
	defer os.RemoveAll(srv.dir)
	select {
	case <-srv.exited:
		return nil
	default:
	}
	// SIGINT is postgres's fast shutdown: it ends the sessions and stops at once.
	if err := srv.cmd.Process.Signal(syscall.SIGINT); err != nil {
		return fmt.Errorf("stopping postgres: %w", err)
	}
	select {
	case <-srv.exited:
		return nil
	case <-time.After(30 * time.Second):
		_ = srv.cmd.Process.Kill()
		<-srv.exited
		return errors.New("stopping postgres: no exit 30s after SIGINT; killed")
	}
}

// CreateDatabase creates an empty database and returns its URL.
func (c *Cluster) CreateDatabase(ctx context.Context) (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("naming database: %w", err)
	}
	name := "slipway_test_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", c.adminURL)
	if err != nil {
		return "", fmt.Errorf("creating database: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("creating database %s: %w", name, err)
	}
	u, err := url.Parse(c.adminURL)
	if err != nil {
		return "", fmt.Errorf("parsing server URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// DropDatabase drops the database at dbURL, ending the sessions still connected to it.
func (c *Cluster) DropDatabase(ctx context.Context, dbURL string) error {
	u, err := url.Parse(dbURL)
	if err != nil {
		return fmt.Errorf("parsing database URL: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if !strings.HasPrefix(name, "slipway_test_") {
		return fmt.Errorf("dropping database %q: not made by CreateDatabase", name)
	}
	db, err := sql.Open("pgx", c.adminURL)
	if err != nil {
		return fmt.Errorf("dropping database %s: %w", name, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("dropping database %s: %w", name, err)
	}
	return nil
}

// NewDatabase creates an empty database for tb, dropped when tb ends, and returns its URL.
func (c *Cluster) NewDatabase(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := c.CreateDatabase(ctx)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(func() {
		if c.owned == nil && os.Getenv(EnvURL) == "" {
			return // the cluster is gone already, and the database with it
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.DropDatabase(ctx, u); err != nil {
			tb.Errorf("%v", err)
		}
	})
	return u
}

// Login is how a client that takes separate settings (such as Temporal's temporal-sql-tool)
// reaches the server: "host:port", a user allowed to create databases, and its password.
func (c *Cluster) Login() (address, user, password string, err error) {
	u, err := url.Parse(c.adminURL)
	if err != nil {
		return "", "", "", fmt.Errorf("parsing server URL: %w", err)
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	password, _ = u.User.Password()
	return net.JoinHostPort(u.Hostname(), port), u.User.Username(), password, nil
}
