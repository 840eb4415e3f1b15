package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/apiplatform/platform/server/app"
)

// edgeFlags registers the bounds of the HTTP and gRPC edge.
func edgeFlags(fs flags, e *app.EdgeConfig) {
	fs.duration(&e.HTTPBodyTimeout, "http-body-timeout", "HTTP_BODY_TIMEOUT", 30*time.Second, "time a client has to send a request body")
	fs.duration(&e.HTTPWriteTimeout, "http-write-timeout", "HTTP_WRITE_TIMEOUT", 60*time.Second, "time to write a non-streaming answer (streams are not bounded)")
	fs.duration(&e.HTTPReadHeaderTimeout, "http-header-timeout", "HTTP_HEADER_TIMEOUT", 10*time.Second, "time a client has to send request headers")
	fs.duration(&e.HTTPIdleTimeout, "http-idle-timeout", "HTTP_IDLE_TIMEOUT", 2*time.Minute, "idle keep-alive connections are closed after this long")
	intFlag(fs, &e.StreamsPerClient, "max-streams-per-client", "MAX_STREAMS_PER_CLIENT", 50, "open stream subscriptions per client address (IPv6: per /64)")
	intFlag(fs, &e.StreamsTotal, "max-streams", "MAX_STREAMS", 20_000, "open stream subscriptions per replica")
	corsFlag(fs, &e.CORSOrigins)
}

// corsFlag registers the origins allowed to call the API cross-origin.
func corsFlag(fs flags, p *[]string) {
	fs.Var(listValue{p}, "cors-origins", "comma-separated origins (https://app.example) whose pages may call the REST API with a bearer token; '*' for any (env CORS_ORIGINS)")
	fs.fromEnv("cors-origins", "CORS_ORIGINS")
}

// adminPassword reads the admin password from --admin-password-file (or
// ADMIN_PASSWORD_FILE, e.g. a mounted secret) or the ADMIN_PASSWORD
// environment variable: never from the command line, where `ps` shows it
// to every user of the machine.
func adminPassword(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("admin password file: %w", err)
		}
		pw := strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return "", errors.New("admin password file is empty")
		}
		return pw, nil
	}
	return os.Getenv("ADMIN_PASSWORD"), nil
}
