package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// replica is one server process, reached through a cutProxy per port so
// the harness can partition it from the load balancer.
type replica struct {
	id                 int
	bin, dir           string
	args               []string
	grpcPort, httpPort int
	metricsPort        int
	grpcCut, httpCut   *cutProxy
	mu                 sync.Mutex
	cmd                *exec.Cmd
	log                *os.File
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (r *replica) grpcAddr() string    { return fmt.Sprintf("127.0.0.1:%d", r.grpcPort) }
func (r *replica) metricsAddr() string { return fmt.Sprintf("127.0.0.1:%d", r.metricsPort) }

func (r *replica) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	args := append([]string{"serve",
		"--grpc-addr", r.grpcAddr(), "--http-addr", fmt.Sprintf("127.0.0.1:%d", r.httpPort), "--metrics-addr", r.metricsAddr(),
		"--data-dir", filepath.Join(r.dir, "data")}, r.args...)
	cmd := exec.Command(r.bin, args...)
	cmd.Stdout, cmd.Stderr, cmd.SysProcAttr = r.log, r.log, dieWithUs()
	cmd.Env = append(os.Environ(), "ADMIN_PASSWORD="+adminPassword)
	if err := cmd.Start(); err != nil {
		return err
	}
	r.cmd = cmd
	go func() { _ = cmd.Wait() }()
	return waitTCP(r.grpcAddr(), 60*time.Second)
}

// kill SIGKILLs the process: no shutdown, no flush.
func (r *replica) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		for waitTCP(r.grpcAddr(), 0) == nil { // until the port is free
			time.Sleep(20 * time.Millisecond)
		}
		r.cmd = nil
	}
}

// dieWithUs: a child is SIGKILLed when the harness dies, however it dies,
// so an interrupted run leaves no servers behind.
func dieWithUs() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }

func waitTCP(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cutProxy forwards a loopback port to a replica's port until cut: then
// it severs open connections and refuses new ones, as a partition would.
type cutProxy struct {
	port   int
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
}

func newCutProxy(target string) (*cutProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &cutProxy{port: l.Addr().(*net.TCPAddr).Port, target: target, conns: map[net.Conn]struct{}{}}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p, nil
}

func (p *cutProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *cutProxy) serve(c net.Conn) {
	if !p.track(c) {
		return
	}
	up, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil || !p.track(up) {
		_ = c.Close()
		return
	}
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) { _, _ = io.Copy(dst, src); done <- struct{}{} }
	go cp(up, c)
	go cp(c, up)
	<-done
	_ = c.Close()
	_ = up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *cutProxy) set(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			_ = c.Close()
		}
		clear(p.conns)
	}
}

// haproxy is the load balancer in front of the replicas' proxies: REST in
// HTTP mode, gRPC in HTTP/2 mode, round robin per request, TCP health
// checks every 300 ms.
func startHAProxy(ctx context.Context, dir string, reps []*replica) (restAddr, grpcAddr string, stop func(), err error) {
	restPort, grpcPort := freePort(), freePort()
	var b strings.Builder
	fmt.Fprintf(&b, `global
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 120s
  timeout server 120s
  retries 2
  option redispatch
frontend rest
  bind 127.0.0.1:%d
  default_backend rest
frontend grpc
  bind 127.0.0.1:%d proto h2
  default_backend grpc
backend rest
  balance roundrobin
`, restPort, grpcPort)
	for _, r := range reps {
		fmt.Fprintf(&b, "  server r%d 127.0.0.1:%d check inter 300ms fall 2 rise 2\n", r.id, r.httpCut.port)
	}
	b.WriteString("backend grpc\n  balance roundrobin\n")
	for _, r := range reps {
		fmt.Fprintf(&b, "  server g%d 127.0.0.1:%d proto h2 check inter 300ms fall 2 rise 2\n", r.id, r.grpcCut.port)
	}
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return "", "", nil, err
	}
	logf, _ := os.Create(filepath.Join(dir, "haproxy.log"))
	cmd := exec.CommandContext(ctx, "haproxy", "-db", "-f", conf)
	cmd.Stdout, cmd.Stderr, cmd.SysProcAttr = logf, logf, dieWithUs()
	if err := cmd.Start(); err != nil {
		return "", "", nil, fmt.Errorf("haproxy (apt-get install haproxy): %w", err)
	}
	restAddr, grpcAddr = "127.0.0.1:"+strconv.Itoa(restPort), "127.0.0.1:"+strconv.Itoa(grpcPort)
	if err := waitTCP(grpcAddr, 10*time.Second); err != nil {
		return "", "", nil, err
	}
	return restAddr, grpcAddr, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }, nil
}

// run runs a shell-split command line and returns its combined output.
func run(line string, extra ...string) error {
	f := append(strings.Fields(line), extra...)
	out, err := exec.Command(f[0], f[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", line, err, out)
	}
	return nil
}
