package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// postgres is a private PostgreSQL cluster for one run: initdb'd into the work dir, listening on
// 127.0.0.1 and a unix socket in its own directory, stopped at the end. A private cluster
// leaves the machine's own PostgreSQL (if any) alone and starts from an empty database, so a
// run never depends on what an earlier one left.
type postgres struct {
	bin  string // .../postgresql/N/bin
	dir  string // the cluster's directory: data/, the socket, the log
	port int
	// owner runs the server processes: PostgreSQL refuses to run as root.
	owner *user.User
}

const (
	dbName     = "mattermost_e2e"
	dbUser     = "mmuser"
	dbPassword = "mostest"
)

// findPostgresBin is the newest /usr/lib/postgresql/N/bin holding initdb (scripts/e2e/run.sh
// installs the Debian packages when there is none).
func findPostgresBin() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
		return "", fmt.Errorf("no initdb under /usr/lib/postgresql/*/bin (apt-get install postgresql)")
	}
	sort.Slice(matches, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[j]))))
		return vi > vj
	})
	return filepath.Dir(matches[0]), nil
}

func newPostgres(dir string, port int) (*postgres, error) {
	bin, err := findPostgresBin()
	if err != nil {
		return nil, err
	}
	pg := &postgres{bin: bin, dir: dir, port: port}
	if os.Geteuid() == 0 {
		if pg.owner, err = user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("running as root needs the postgres user (the Debian package creates it): %w", err)
		}
	}
	return pg, nil
}

func (pg *postgres) data() string { return filepath.Join(pg.dir, "data") }

// cmd runs a PostgreSQL program as the cluster's owner.
func (pg *postgres) cmd(name string, args ...string) *exec.Cmd {
	prog := filepath.Join(pg.bin, name)
	if pg.owner != nil {
		return exec.Command("runuser", append([]string{"-u", pg.owner.Username, "--", prog}, args...)...)
	}
	return exec.Command(prog, args...)
}

func (pg *postgres) run(name string, args ...string) (string, error) {
	out, err := pg.cmd(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// stopStale stops a cluster an interrupted earlier run left in dir.
func stopStalePostgres(dir string) {
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err != nil {
		return
	}
	pg, err := newPostgres(dir, 0)
	if err != nil {
		return
	}
	logf("stopping the PostgreSQL cluster an earlier run left in %s", data)
	_, _ = pg.run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
}

// start creates the cluster, starts it, and creates the role and the database.
func (pg *postgres) start() error {
	if err := os.MkdirAll(pg.dir, 0o700); err != nil {
		return err
	}
	if pg.owner != nil {
		uid, _ := strconv.Atoi(pg.owner.Uid)
		gid, _ := strconv.Atoi(pg.owner.Gid)
		if err := os.Chown(pg.dir, uid, gid); err != nil {
			return err
		}
	}
	if _, err := pg.run("initdb", "-D", pg.data(), "-U", "postgres", "-E", "UTF8", "--no-locale",
		"--auth-local=trust", "--auth-host=scram-sha-256"); err != nil {
		return err
	}
	// fsync off: the cluster lives for one run; durability buys nothing and costs seconds.
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
		pg.port, pg.dir)
	if _, err := pg.run("pg_ctl", "-D", pg.data(), "-l", filepath.Join(pg.dir, "postgres.log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		return err
	}
	for _, sql := range []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", dbUser, dbPassword),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", dbName, dbUser),
	} {
		if _, err := pg.psql("postgres", sql); err != nil {
			return err
		}
	}
	return nil
}

// psql runs one statement as the superuser over the unix socket; its output is unaligned,
// tuples only.
func (pg *postgres) psql(db, sql string) (string, error) {
	out, err := pg.run("psql", "-h", pg.dir, "-p", strconv.Itoa(pg.port), "-U", "postgres", "-d", db,
		"-v", "ON_ERROR_STOP=1", "-Atc", sql)
	return strings.TrimRight(out, "\n"), err
}

func (pg *postgres) stop() {
	if _, err := pg.run("pg_ctl", "-D", pg.data(), "-m", "fast", "-w", "-t", "30", "stop"); err != nil {
		logf("stopping PostgreSQL: %v", err)
	}
}

func (pg *postgres) dsn() string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable&connect_timeout=10", dbUser, dbPassword, pg.port, dbName)
}

// freePort is preferred when nothing listens there, else any free loopback port.
func freePort(preferred int) (int, error) {
	if preferred > 0 {
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", preferred)); err == nil {
			l.Close()
			return preferred, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
