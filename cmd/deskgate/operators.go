package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/deskgate/deskgate/appliance/admin"
)

// stdin is where passwords are read from (tests replace it).
var stdin io.Reader = os.Stdin

const adminUsage = `usage: deskgate admin token
       deskgate admin add NAME [--role operator|admin]
       deskgate admin passwd NAME [--role operator|admin]
       deskgate admin remove NAME
       deskgate admin list
The password is asked for on the terminal (twice, not echoed) or read as
one line from stdin; never from the command line`

// operatorCmd manages the web console's operator accounts over the unix
// socket (the daemon refuses these changes over TCP).
func operatorCmd(ctx context.Context, c *admin.Client, args []string, overTCP bool, out io.Writer, show func(any, func()) (int, error)) (int, error) {
	if overTCP && args[0] != "list" {
		return 2, errors.New("admin " + args[0] + ": operator accounts are changed only over the unix socket; run it on the box without -addr")
	}
	if args[0] == "list" {
		var ops []struct {
			Name      string    `json:"name"`
			Role      string    `json:"role"`
			CreatedAt time.Time `json:"createdAt"`
			UpdatedAt time.Time `json:"updatedAt"`
		}
		if err := c.Get(ctx, "/v1/operators", nil, &ops); err != nil {
			return 1, err
		}
		return show(ops, func() {
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLE\tCHANGED")
			for _, o := range ops {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", o.Name, o.Role, o.UpdatedAt.Local().Format("2006-01-02 15:04"))
			}
			tw.Flush()
		})
	}
	fs := flag.NewFlagSet("admin "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	role := fs.String("role", "", "operator (read, guest codes, disconnect) or admin (everything)")
	var name string
	rest := args[1:]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		name, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil || name == "" || fs.NArg() > 0 {
		return 2, errors.New(adminUsage)
	}
	req := map[string]string{"name": name}
	path := "/v1/operators"
	switch args[0] {
	case "add":
		req["role"] = *role
		if *role == "" {
			req["role"] = "operator"
		}
	case "passwd":
		path += "/passwd"
		if *role != "" {
			req["role"] = *role
		}
	case "remove":
		path += "/remove"
	default:
		return 2, errors.New(adminUsage)
	}
	if args[0] != "remove" {
		pw, err := readPassword(out, name)
		if err != nil {
			return 1, err
		}
		req["password"] = pw
	}
	var v map[string]string
	if err := c.PostJSON(ctx, path, req, &v); err != nil {
		return 1, err
	}
	fmt.Fprintf(out, "operator %s: %s\n", name, map[string]string{"add": "added", "passwd": "password changed", "remove": "removed"}[args[0]])
	return 0, nil
}

// readPassword reads the new password: from a terminal twice without
// echo, else one line from stdin.
func readPassword(out io.Writer, name string) (string, error) {
	f, isFile := stdin.(*os.File)
	if isFile {
		if t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			first, err := readNoEcho(f, t, out, "Password for "+name+": ")
			if err != nil {
				return "", err
			}
			again, err := readNoEcho(f, t, out, "Again: ")
			if err != nil {
				return "", err
			}
			if first != again {
				return "", errors.New("the passwords differ")
			}
			return first, nil
		}
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || line == "") {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func readNoEcho(f *os.File, t *unix.Termios, out io.Writer, prompt string) (string, error) {
	fmt.Fprint(out, prompt)
	quiet := *t
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, &quiet); err != nil {
		return "", fmt.Errorf("turn off echo: %w", err)
	}
	defer func() {
		_ = unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t)
		fmt.Fprintln(out)
	}()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
