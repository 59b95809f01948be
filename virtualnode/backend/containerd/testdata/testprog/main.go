// testprog is the one program of the containerd backend's test image: its first argument picks what it does.
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Println("usage: testprog serve PORT | sleep | exit CODE | cat FILE | env NAME | id | append FILE TEXT | write FILE | burn")
		os.Exit(2)
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "serve":
		fmt.Println("serving on", args[0])
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		srv := &http.Server{Addr: "127.0.0.1:" + args[0], Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { waitTerm(); fmt.Println("terminating"); os.Exit(0) }()
		fmt.Fprintln(os.Stderr, srv.ListenAndServe())
		os.Exit(1)
	case "sleep":
		fmt.Println("sleeping")
		waitTerm()
		fmt.Println("terminating")
	case "exit":
		code, _ := strconv.Atoi(args[0])
		fmt.Println("exiting", code)
		os.Exit(code)
	case "cat":
		b, err := os.ReadFile(args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Stdout.Write(b)
		if len(args) > 1 && args[1] == "then-sleep" {
			waitTerm()
		}
	case "env":
		fmt.Println(os.Getenv(args[0]))
	case "id":
		fmt.Printf("%d:%d\n", os.Getuid(), os.Getgid())
	case "append":
		f, err := os.OpenFile(args[0], os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o666)
		if err == nil {
			_, err = fmt.Fprintln(f, args[1])
			f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "write":
		if err := os.WriteFile(args[0], []byte("x"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "burn":
		go func() { waitTerm(); os.Exit(0) }()
		for x := 0; ; x++ {
			_ = x * x
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}

func waitTerm() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}
