package notify_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/deskgate/deskgate/appliance/model"
	"github.com/deskgate/deskgate/appliance/notify"
)

// The composition root wires a Sender from the store (the Outbox), a Mailer
// (SMTP, or the demo's Mailbox) and the templates, runs it, and kicks it
// after each enqueue.
func ExampleSender() {
	dir, _ := os.MkdirTemp("", "mailbox")
	defer os.RemoveAll(dir)

	tmpl, err := notify.LoadTemplates("") // or the operator's templates_dir
	if err != nil {
		panic(err)
	}
	outbox := notify.NewMemOutbox() // in deskgated: the *store.Store
	mailer := notify.NewMailbox(dir)
	// For real mail: notify.NewSMTPMailer(notify.SMTPConfig{Host: "smtp.example.com",
	//     Username: "wifi@space.example", Password: secret, TLS: notify.TLSStartTLS})
	s := notify.NewSender(outbox, mailer, tmpl, "Space WiFi <wifi@space.example>", slog.New(slog.DiscardHandler))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()

	outbox.Add(model.Email{
		ID: "welcome-m1", Kind: "welcome", To: "ada@example.com",
		Data:   map[string]string{"name": "Ada", "username": "ada", "network": "Space-WiFi"},
		Secret: map[string]string{"password": "generated-password"},
	})
	s.Kick()

	for s.Stats().Sent == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	fmt.Println(<-done)
	files, _ := mailer.Files()
	fmt.Println(len(files), "message in the mailbox")
	// Output:
	// context canceled
	// 1 message in the mailbox
}
