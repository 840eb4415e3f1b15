package shortener

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type fakeWriter struct {
	mu      sync.Mutex
	batches [][]Click
	fail    int           // fail this many writes first
	gate    chan struct{} // when set, every write waits for it
	wrote   chan int      // receives each stored batch's size
}

func (f *fakeWriter) write(ctx context.Context, cs []Click) error {
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return errors.New("database down")
	}
	f.batches = append(f.batches, append([]Click(nil), cs...))
	if f.wrote != nil {
		f.wrote <- len(cs)
	}
	return nil
}

func (f *fakeWriter) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, b := range f.batches {
		n += len(b)
	}
	return n
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func plain(r rawClick) Click { return Click{Code: r.code, At: r.at, Country: "ZZ", Agent: AgentHuman} }

func TestRecorderFlushesFullBatchAtOnce(t *testing.T) {
	w := &fakeWriter{wrote: make(chan int, 10)}
	r := newRecorder(100, 3, time.Hour, w.write, plain, quiet)
	defer r.close()
	for range 3 {
		r.add(rawClick{code: "abc"})
	}
	select {
	case n := <-w.wrote:
		if n != 3 {
			t.Fatalf("batch of %d, want 3", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a full batch was not flushed")
	}
}

func TestRecorderFlushesOnInterval(t *testing.T) {
	w := &fakeWriter{wrote: make(chan int, 10)}
	r := newRecorder(100, 1000, 10*time.Millisecond, w.write, plain, quiet)
	defer r.close()
	r.add(rawClick{code: "abc"})
	select {
	case n := <-w.wrote:
		if n != 1 {
			t.Fatalf("batch of %d, want 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the interval did not flush")
	}
}

// add never waits for the store: with the writer stuck and the buffer
// full, clicks are dropped and counted, and close still stores what was
// buffered.
func TestRecorderDropsWhenFullWithoutBlocking(t *testing.T) {
	w := &fakeWriter{gate: make(chan struct{})}
	r := newRecorder(5, 2, time.Hour, w.write, plain, quiet)
	before := counterValue(clicksDropped)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			r.add(rawClick{code: "abc"})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("add blocked while the store was stuck")
	}
	close(w.gate)
	r.close()
	dropped := int(counterValue(clicksDropped) - before)
	if w.total()+dropped != 50 || dropped < 50-2*5 {
		t.Fatalf("stored %d, dropped %d of 50 (buffer 5)", w.total(), dropped)
	}
}

// A batch the store refused is written with the next flush; close writes
// what is left.
func TestRecorderRetriesAndFlushesOnClose(t *testing.T) {
	w := &fakeWriter{fail: 1}
	r := newRecorder(100, 10, 5*time.Millisecond, w.write, plain, quiet)
	for range 4 {
		r.add(rawClick{code: "abc"})
	}
	deadline := time.Now().Add(10 * time.Second)
	for w.total() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for range 3 {
		r.add(rawClick{code: "def"})
	}
	r.close()
	if w.total() != 7 {
		t.Fatalf("stored %d clicks, want 7", w.total())
	}
}

func TestRecorderCloseFlushesBuffered(t *testing.T) {
	w := &fakeWriter{}
	r := newRecorder(100, 1000, time.Hour, w.write, plain, quiet)
	for range 7 {
		r.add(rawClick{code: "abc"})
	}
	r.close()
	if w.total() != 7 {
		t.Fatalf("close stored %d clicks, want 7", w.total())
	}
}

func TestClassify(t *testing.T) {
	c := newClassifier()
	for ua, want := range map[string]string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36":                         AgentHuman,
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1": AgentHuman,
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)":                                                                AgentBot,
		"curl/8.5.0":             AgentBot,
		"python-requests/2.31.0": AgentBot,
		"":                       AgentBot,
		"   ":                    AgentBot,
		"facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)":             AgentPreview,
		"Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)":                            AgentPreview,
		"Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)":                     AgentPreview,
		"TelegramBot (like TwitterBot)":                                                         AgentPreview,
		"WhatsApp/2.23.20.0 A":                                                                  AgentPreview,
		"Twitterbot/1.0":                                                                        AgentPreview,
		"LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)": AgentPreview,
	} {
		for range 2 { // the second answer comes from the memo
			if got := c.classify(ua); got != want {
				t.Errorf("classify(%q) = %s, want %s", ua, got, want)
			}
		}
	}
}

func TestNormCountryAndReferer(t *testing.T) {
	for in, want := range map[string]string{"de": "DE", "US": "US", "XX": "", "T1": "", "": "", "DEU": "", "1A": "", "ü": ""} {
		if got := normCountry(in); got != want {
			t.Errorf("normCountry(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"https://News.Example.com/a?b": "news.example.com",
		"http://[::1]:8080/":           "::1",
		"android-app://com.slack":      "",
		"not a url":                    "",
		"":                             "",
	} {
		if got := refererHost(in); got != want {
			t.Errorf("refererHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDescribe(t *testing.T) {
	c := newClassifier()
	for ua, want := range map[string]agentInfo{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36":                                   {AgentHuman, "Chrome", "Linux", DeviceDesktop},
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 grpc-go/1.70.0":                    {AgentHuman, "Chrome", "Linux", DeviceDesktop},
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1": {AgentHuman, "Safari", "iOS", DeviceMobile},
		"Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1":          {AgentHuman, "Safari", "iOS", DeviceTablet},
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0":                                                        {AgentHuman, "Firefox", "Windows", DeviceDesktop},
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)":                                                                {AgentBot, "Googlebot", "", DeviceBot},
		"": {AgentBot, "", "", DeviceBot},
	} {
		for range 2 {
			if got := c.describe(ua); got != want {
				t.Errorf("describe(%q) = %+v, want %+v", ua, got, want)
			}
		}
	}
}
