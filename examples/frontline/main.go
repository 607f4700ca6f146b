// Command frontline serves the example frontline page (index.html and
// frontline.js, embedded) on a loopback port, so that it runs wherever the
// repository builds:
//
//	go run ./examples/frontline                 # http://127.0.0.1:8000/
//	go run ./examples/frontline -listen 127.0.0.1:8080
//
// The page's origin must be in the agent's api.allowed_origins (README.md).
// Any other static HTTP server serves the directory as well.
package main

import (
	"embed"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

//go:embed index.html frontline.js
var site embed.FS

// handler serves the page; nothing is cached (the page is a developer's
// tool that changes as they edit it).
func handler() http.Handler {
	files := http.FileServerFS(site)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8000", "loopback host:port to serve the page on")
	flag.Parse()
	host, _, err := net.SplitHostPort(*listen)
	if err != nil || !(host == "localhost" || net.ParseIP(host).IsLoopback()) {
		fmt.Fprintf(os.Stderr, "frontline: -listen %q: want a loopback host:port, e.g. 127.0.0.1:8000\n", *listen)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "frontline:", err)
		os.Exit(1)
	}
	origin := "http://" + ln.Addr().String()
	if host == "localhost" {
		origin = "http://" + *listen
	}
	fmt.Printf("frontline example: %s/\n(the agent's api.allowed_origins must list %s)\n", origin, origin)
	srv := &http.Server{Handler: handler(), ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "frontline:", err)
		os.Exit(1)
	}
}
