package notify

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	texttemplate "text/template"

	"github.com/deskgate/deskgate/appliance/model"
)

//go:embed templates/*
var defaultTemplates embed.FS

// ErrUnknownKind reports an email kind with no template.
var ErrUnknownKind = errors.New("no template for email kind")

// Templates holds the parsed email templates, one set per kind (welcome,
// guest_code, ...). It is safe for concurrent use.
type Templates struct {
	kinds map[string]*kindTemplates
}

type kindTemplates struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template // nil: text only
}

// Template file suffixes: <kind>.subject.txt, <kind>.txt, <kind>.html.
const (
	suffixSubject = ".subject.txt"
	suffixText    = ".txt"
	suffixHTML    = ".html"
)

// LoadTemplates parses the embedded default templates and then the
// operator's overrides in overrideDir (empty: none). Each override file
// replaces the default of the same name; files for a new kind add it. A
// kind needs a subject and a text template; the HTML one is optional.
//
// Templates see one flat map of strings: the email's Data, then its Secret
// (which wins on a clash), plus "id", "kind", "to" and "username" when Data
// has none. A missing key renders as the empty string. HTML templates use
// html/template, so values are escaped for their context.
func LoadTemplates(overrideDir string) (*Templates, error) {
	files := map[string]string{} // file name -> content
	if err := readTemplates(defaultTemplates, "templates", files); err != nil {
		return nil, fmt.Errorf("load default templates: %w", err)
	}
	if overrideDir != "" {
		if err := readTemplates(os.DirFS(overrideDir), ".", files); err != nil {
			return nil, fmt.Errorf("load templates from %s: %w", overrideDir, err)
		}
	}
	t := &Templates{kinds: map[string]*kindTemplates{}}
	kinds := map[string]bool{}
	for name := range files {
		switch {
		case strings.HasSuffix(name, suffixSubject):
			kinds[strings.TrimSuffix(name, suffixSubject)] = true
		case strings.HasSuffix(name, suffixText):
			kinds[strings.TrimSuffix(name, suffixText)] = true
		case strings.HasSuffix(name, suffixHTML):
			kinds[strings.TrimSuffix(name, suffixHTML)] = true
		}
	}
	for kind := range kinds {
		k := &kindTemplates{}
		var err error
		src, ok := files[kind+suffixSubject]
		if !ok {
			return nil, fmt.Errorf("load templates: kind %q has no %s", kind, kind+suffixSubject)
		}
		if k.subject, err = parseText(kind+suffixSubject, src); err != nil {
			return nil, err
		}
		src, ok = files[kind+suffixText]
		if !ok {
			return nil, fmt.Errorf("load templates: kind %q has no %s", kind, kind+suffixText)
		}
		if k.text, err = parseText(kind+suffixText, src); err != nil {
			return nil, err
		}
		if src, ok := files[kind+suffixHTML]; ok {
			k.html, err = htmltemplate.New(kind + suffixHTML).Option("missingkey=zero").Parse(src)
			if err != nil {
				return nil, fmt.Errorf("load templates: %w", err)
			}
		}
		t.kinds[kind] = k
	}
	return t, nil
}

func parseText(name, src string) (*texttemplate.Template, error) {
	tt, err := texttemplate.New(name).Option("missingkey=zero").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("load templates: %w", err)
	}
	return tt, nil
}

// readTemplates reads the template files directly in dir of fsys.
func readTemplates(fsys fs.FS, dir string, into map[string]string) error {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		if !strings.HasSuffix(name, suffixText) && !strings.HasSuffix(name, suffixHTML) {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return err
		}
		into[filepath.Base(name)] = string(b)
	}
	return nil
}

// Kinds returns the email kinds that have templates, sorted.
func (t *Templates) Kinds() []string {
	var ks []string
	for k := range t.kinds {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Render builds the message for outbox entry e, sent from from. The
// message ID is e.ID, so the Message-ID is stable across retries. Line
// breaks in the rendered subject become spaces. Errors never contain
// template data (which may hold secrets).
func (t *Templates) Render(e model.Email, from string) (Message, error) {
	k, ok := t.kinds[e.Kind]
	if !ok {
		return Message{}, fmt.Errorf("render email %s: %w %q", e.ID, ErrUnknownKind, e.Kind)
	}
	data := templateData(e)
	var subj, text, html bytes.Buffer
	if err := k.subject.Execute(&subj, data); err != nil {
		return Message{}, fmt.Errorf("render email %s: %w", e.ID, err)
	}
	if err := k.text.Execute(&text, data); err != nil {
		return Message{}, fmt.Errorf("render email %s: %w", e.ID, err)
	}
	if k.html != nil {
		if err := k.html.Execute(&html, data); err != nil {
			return Message{}, fmt.Errorf("render email %s: %w", e.ID, err)
		}
	}
	m := Message{
		ID:      e.ID,
		To:      e.To,
		From:    from,
		Subject: strings.Join(strings.Fields(subj.String()), " "),
		Text:    text.String(),
		HTML:    html.String(),
	}
	if err := m.Validate(); err != nil {
		return Message{}, fmt.Errorf("render email %s: %w", e.ID, err)
	}
	return m, nil
}

func templateData(e model.Email) map[string]string {
	d := make(map[string]string, len(e.Data)+len(e.Secret)+4)
	for k, v := range map[string]string{"id": e.ID, "kind": e.Kind, "to": e.To, "username": e.Username} {
		d[k] = v
	}
	for k, v := range e.Data {
		d[k] = v
	}
	for k, v := range e.Secret {
		d[k] = v
	}
	return d
}
