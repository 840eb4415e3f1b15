// Command chaos runs three server replicas behind HAProxy on PostgreSQL and
// Redis, drives a bounded mixed load through the load balancer while it
// kills and partitions things on a schedule, and then checks the
// client-side log of acknowledged operations against what the platform
// holds. It prints a one-screen report and exits 1 on any violation.
//
//	.ci/with-services go run ./.ci/chaos -rounds 3   (make chaos)
//
// It needs TEST_DATABASE_URL, TEST_PG_CTL and TEST_PG_DATA from
// .ci/with-services, and haproxy and redis-server from Debian. A module of
// its own so that its checker (porcupine) stays out of the server's go.mod.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	identityv1 "github.com/apiplatform/platform/gen/go/identity/v1"
	votev1 "github.com/apiplatform/platform/gen/go/vote/v1"
)

const adminUser, adminPassword = "chaos-admin", "chaos-admin-password"

func main() {
	rounds := flag.Int("rounds", 3, "rounds of faults; each round injects every kind once")
	hold := flag.Duration("hold", 3*time.Second, "how long each fault lasts")
	gap := flag.Duration("gap", 2*time.Second, "quiet time between faults")
	grace := flag.Duration("grace", 5*time.Second, "errors this long after a fault's recovery count as its own")
	accounts := flag.Int("accounts", 20, "registered accounts voting, placing and saving favorites")
	bin := flag.String("server", "", "server binary (default: go build ./server)")
	soakFor := flag.Duration("soak", 0, "no faults: run the load this long, sampling RSS and goroutines (make soak)")
	flag.Parse()
	if *soakFor > 0 {
		*rounds = 0
	}
	if err := chaos(*rounds, *hold, *gap, *grace, *accounts, *bin, *soakFor); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

func chaos(rounds int, hold, gap, grace time.Duration, nAccounts int, bin string, soakFor time.Duration) error {
	dbURL, pgCtl, pgData := os.Getenv("TEST_DATABASE_URL"), os.Getenv("TEST_PG_CTL"), os.Getenv("TEST_PG_DATA")
	if dbURL == "" || pgData == "" {
		return fmt.Errorf("run through .ci/with-services (TEST_DATABASE_URL, TEST_PG_CTL, TEST_PG_DATA)")
	}
	dir, err := os.MkdirTemp("", "platform-chaos.")
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			_ = os.RemoveAll(dir)
		}
	}()
	if bin == "" {
		bin = filepath.Join(dir, "server")
		root, _ := exec.Command("git", "rev-parse", "--show-toplevel").Output()
		build := exec.Command("go", "build", "-o", bin, "./server")
		build.Dir, build.Stderr = strings.TrimSpace(string(root)), os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build ./server: %w", err)
		}
	}
	rp := &redisProc{port: freePort(), dir: dir}
	if err := rp.start(); err != nil {
		return err
	}
	defer rp.kill()
	pg := postgres{ctl: pgCtl, data: pgData}

	// .ci/with-services runs PostgreSQL with synchronous_commit off, for
	// speed; a crash then loses commits already acknowledged. Production
	// keeps it on, and so do the replicas here.
	dbURL += "&options=" + strings.ReplaceAll(url.QueryEscape("-c synchronous_commit=on"), "+", "%20")
	const w, h = 32, 32
	args := []string{"--database-url", dbURL, "--redis-url", rp.url(),
		"--admin-user", adminUser, // the password through the environment, never the command line
		"--canvas-width", "32", "--canvas-height", "32", "--canvas-cooldown", "0", "--canvas-batch-interval", "200ms",
		"--vote-user-limit", "100000/1m,100000", "--vote-addr-limit", "100000/1m,100000", "--trusted-proxies", "127.0.0.0/8"}
	var reps []*replica
	for i := range 3 {
		r := &replica{id: i, bin: bin, dir: filepath.Join(dir, fmt.Sprint("r", i)), args: args, grpcPort: freePort(), httpPort: freePort(), metricsPort: freePort()}
		_ = os.MkdirAll(r.dir, 0o755)
		r.log, _ = os.Create(filepath.Join(dir, fmt.Sprintf("replica-%d.log", i)))
		if r.grpcCut, err = newCutProxy(r.grpcAddr()); err != nil {
			return err
		}
		if r.httpCut, err = newCutProxy(fmt.Sprintf("127.0.0.1:%d", r.httpPort)); err != nil {
			return err
		}
		if err := r.start(); err != nil {
			keep = true
			return fmt.Errorf("replica %d: %w (log %s)", i, err, r.log.Name())
		}
		defer r.kill()
		reps = append(reps, r)
	}
	ctx := context.Background()
	rest, lbGRPC, stopLB, err := startHAProxy(ctx, dir, reps)
	if err != nil {
		return err
	}
	defer stopLB()
	// Several connections, as many clients would have; HAProxy balances
	// each request.
	var lb []*grpc.ClientConn
	for range 4 {
		c, err := grpc.NewClient(lbGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer c.Close()
		lb = append(lb, c)
	}

	setup := time.Now()
	admin, accts, elections, links, shares, err := prepare(ctx, lb[0], rest, nAccounts)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	l := &ledger{ops: map[string]int{}, votes: map[votePair]string{}, unsure: map[[2]int32][]int32{}}
	var violations []string
	var vmu sync.Mutex
	bad := func(s string) { vmu.Lock(); violations = append(violations, s); vmu.Unlock() }

	idle, err := sampleAll(ctx, reps)
	if err != nil {
		return err
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	goLoad := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	for i, a := range accts[:nAccounts/2] {
		goLoad(func() { placer(loadCtx, l, lb[i%len(lb)], a, w, h) })
	}
	for i, a := range accts[nAccounts/2:] {
		goLoad(func() { favoriter(loadCtx, l, lb[i%len(lb)], i, a, i) })
	}
	for range 3 {
		goLoad(func() { redirector(loadCtx, l, rest, links, shares, bad) })
	}
	streamRes := make(chan streamResult, 3)
	for i := range 3 {
		goLoad(func() { streamRes <- subscriber(loadCtx, lb[i%len(lb)]) })
	}
	// Votes trickle in over the whole run so that faults land among them.
	work := make(chan votePair)
	pairs := nAccounts * len(elections)
	total := time.Duration(rounds*len(faultKinds)) * (hold + gap + 2*time.Second)
	if soakFor > 0 {
		total = soakFor
	}
	go func() {
		defer close(work)
		for e := range elections {
			for u := range nAccounts {
				select {
				case work <- votePair{u, e}:
				case <-loadCtx.Done():
					return
				}
				time.Sleep(total / time.Duration(pairs))
			}
		}
	}()
	var vwg sync.WaitGroup
	for i := range 8 {
		vwg.Add(1)
		go func() { defer vwg.Done(); voter(loadCtx, l, lb[i%len(lb)], accts, elections, work) }()
	}

	fl := &faultLog{grace: grace}
	start := time.Now()
	var injectErr, soakErr error
	if soakFor > 0 {
		soakErr = soak(ctx, reps, idle, soakFor, 30*time.Second, 3*time.Minute, stopLoad)
	} else {
		injectErr = inject(ctx, fl, rounds, hold, gap, reps, rp, pg)
	}
	if injectErr != nil { // the platform may not come back: stop at once
		fmt.Fprintln(os.Stderr, "chaos:", injectErr)
		stopLoad()
	}
	vwg.Wait()
	time.Sleep(gap) // load on a healthy platform before stopping
	stopLoad()
	wg.Wait()
	close(streamRes)
	elapsed := time.Since(start)
	if injectErr != nil {
		bad("fault injection: " + injectErr.Error())
	}
	if injectErr != nil {
		return fmt.Errorf("fault injection: %w", injectErr)
	}
	if err := healthy(ctx, reps, time.Minute); err != nil {
		return err
	}

	// The checks read every replica directly, past the load balancer.
	var direct []grpc.ClientConnInterface
	for _, r := range reps {
		c, err := grpc.NewClient(r.grpcAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer c.Close()
		direct = append(direct, c)
	}
	checkVotes(ctx, direct[0], admin, l, elections, nAccounts, bad)
	checkCanvas(ctx, direct, l, bad)
	linear := checkFavorites(l, dir, bad)
	var streams []streamResult
	for r := range streamRes {
		streams = append(streams, r)
		if r.violation != "" {
			bad("stream: " + r.violation)
		}
	}
	outside := 0
	var errCodes = map[string]int{}
	cut := 0 // 500s the client's gRPC library made of a stream HAProxy ended early
	for _, e := range l.errs {
		errCodes[fmt.Sprintf("%s %d", e.op, e.code)]++
		switch {
		case e.code != 500:
		case e.op == "redirect", strings.Contains(e.err, "desc = internal error"):
			// The platform's own 500 (HAProxy answers 502 to 504 itself):
			// during a fault the answer is 503 with a retry delay; an
			// internal error is an unclassified failure.
			bad(fmt.Sprintf("%s answered internal error at %s (the replica logs say why)", e.op, e.at.Format("15:04:05.000")))
		default:
			// A SIGKILLed replica's half-sent response: HAProxy closes the
			// stream without trailers, which grpc-go reports as INTERNAL.
			cut++
		}
		if e.code >= 500 && !fl.inWindow(e.at) {
			if outside++; outside <= 5 {
				bad(fmt.Sprintf("%s answered %d outside any fault window at %s: %s", e.op, e.code, e.at.Format("15:04:05.000"), e.err))
			}
		}
	}
	if outside > 5 {
		bad(fmt.Sprintf("%d answers of 5xx outside fault windows in all", outside))
	}
	if soakErr != nil {
		bad(soakErr.Error())
	}
	report(os.Stdout, l, fl, streams, errCodes, linear, violations, time.Since(setup)-elapsed, elapsed)
	if cut > 0 {
		fmt.Fprintf(os.Stdout, "500s from streams the load balancer cut when their replica died: %d\n", cut)
	}
	reportErrorLogs(os.Stdout, reps)
	if len(violations) > 0 {
		keep = true
		return fmt.Errorf("%d violations (logs in %s kept)", len(violations), dir)
	}
	return nil
}

// prepare signs the admin in, registers the accounts, opens the elections
// and creates the links and shares the redirectors follow.
func prepare(ctx context.Context, conn *grpc.ClientConn, rest string, n int) (admin string, accts []account, elections []string, links map[string]string, shares []string, err error) {
	id := identityv1.NewIdentityServiceClient(conn)
	res, err := id.Login(ctx, &identityv1.LoginRequest{Username: adminUser, Password: adminPassword})
	if err != nil {
		return "", nil, nil, nil, nil, fmt.Errorf("admin login: %w", err)
	}
	admin = res.GetSession().GetAccessToken()
	stamp := time.Now().UnixNano() % 1e9
	for i := range n {
		name := fmt.Sprintf("chaos%d_%d", stamp, i)
		r, err := id.Register(ctx, &identityv1.RegisterRequest{Username: name, Password: "password-" + name})
		if err != nil {
			return "", nil, nil, nil, nil, fmt.Errorf("register: %w", err)
		}
		accts = append(accts, account{r.GetUser().GetId(), r.GetSession().GetAccessToken()})
	}
	v := votev1.NewVoteServiceClient(conn)
	for i := range 3 {
		e, err := v.CreateElection(withToken(ctx, admin), &votev1.CreateElectionRequest{Title: fmt.Sprint("chaos ", i),
			Candidates: []*votev1.Candidate{{CandidateId: "red", Name: "Red"}, {CandidateId: "green", Name: "Green"}, {CandidateId: "blue", Name: "Blue"}}})
		if err != nil {
			return "", nil, nil, nil, nil, fmt.Errorf("create election: %w", err)
		}
		if _, err := v.OpenElection(withToken(ctx, admin), &votev1.OpenElectionRequest{ElectionId: e.GetElection().GetElectionId()}); err != nil {
			return "", nil, nil, nil, nil, fmt.Errorf("open election: %w", err)
		}
		elections = append(elections, e.GetElection().GetElectionId())
	}
	links = map[string]string{}
	for i, a := range accts[:5] {
		target := fmt.Sprintf("https://example.com/chaos/%d", i)
		var out struct{ Code string }
		if err := restJSON(rest, "/api/v1/shorten", a.token, map[string]string{"longUrl": target}, &out); err != nil {
			return "", nil, nil, nil, nil, err
		}
		links[out.Code] = target
	}
	for _, a := range accts[:5] {
		if err := putFavorite(rest, a.token, "#00AA00"); err != nil {
			return "", nil, nil, nil, nil, err
		}
		var sh struct {
			Share struct{ Slug string }
			Slug  string
		}
		if err := restJSON(rest, "/api/v1/shares", a.token, map[string]bool{"snapshot": true}, &sh); err != nil {
			return "", nil, nil, nil, nil, err
		}
		slug := sh.Slug
		if slug == "" {
			slug = sh.Share.Slug
		}
		shares = append(shares, slug)
	}
	return admin, accts, elections, links, shares, nil
}

// reportErrorLogs prints what the replicas logged at level ERROR: an
// internal error is a 500 the client saw, and its cause is only here.
func reportErrorLogs(out *os.File, reps []*replica) {
	for _, r := range reps {
		data, err := os.ReadFile(r.log.Name())
		if err != nil {
			continue
		}
		var lines []string
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "level=ERROR") {
				lines = append(lines, line)
			}
		}
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(out, "replica %d logged %d errors; the first:\n", r.id, len(lines))
		for _, line := range lines[:min(len(lines), 5)] {
			fmt.Fprintf(out, "  %.400s\n", line)
		}
	}
}

func report(out *os.File, l *ledger, fl *faultLog, streams []streamResult, errCodes map[string]int, linear any, violations []string, setup, elapsed time.Duration) {
	fmt.Fprintf(out, "\nchaos run: 3 replicas behind HAProxy, PostgreSQL, Redis; %v of load and faults (setup %v)\n", elapsed.Round(time.Second), setup.Round(time.Second))
	fmt.Fprintf(out, "operations acknowledged: votes %d, placements %d, favorite set/get %d, redirects+share pages %d\n",
		l.ops["vote"], l.ops["place"], l.ops["favorite"], l.ops["redirect"])
	kinds := map[string]int{}
	var longest time.Duration
	for _, f := range fl.faults {
		kinds[f.kind]++
		longest = max(longest, f.end.Sub(f.start))
	}
	fmt.Fprintf(out, "faults: %d in all:", len(fl.faults))
	for _, k := range faultKinds {
		fmt.Fprintf(out, " %s %d,", k, kinds[k])
	}
	fmt.Fprintf(out, " longest until healthy %v\n", longest.Round(time.Millisecond))
	var keys []string
	for k := range errCodes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(out, "errors seen by clients (op status: count): ")
	for _, k := range keys {
		fmt.Fprintf(out, "%s: %d; ", k, errCodes[k])
	}
	fmt.Fprintln(out)
	for i, s := range streams {
		fmt.Fprintf(out, "stream %d: %d batches, %d resyncs, %d reconnects\n", i, s.batches, s.resyncs, s.reconnects)
	}
	fmt.Fprintf(out, "favorites linearizable (porcupine): %v\n", linear)
	fmt.Fprintf(out, "violations: %d\n", len(violations))
	for _, v := range violations {
		fmt.Fprintln(out, "  -", v)
	}
}
