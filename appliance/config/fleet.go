package config

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"
)

// FleetKeys are the top-level sections that are fleet-wide configuration
// (`deskgate fleet config push`, docs/fleet.md): the same at every box of
// a fleet. Everything else (NAS lists, interfaces, listen addresses,
// secrets) stays per box.
var FleetKeys = []string{"plans", "groups", "locations", "roaming"}

// MaxFleetDoc bounds a fleet configuration document.
const MaxFleetDoc = 48 << 10

// FleetSections returns the fleet-wide sections of the configuration file
// data as a YAML document (only the keys present).
func FleetSections(data []byte) ([]byte, error) {
	root, err := mappingRoot(data)
	if err != nil {
		return nil, err
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if slices.Contains(FleetKeys, root.Content[i].Value) {
			out.Content = append(out.Content, root.Content[i], root.Content[i+1])
		}
	}
	return encodeYAML(out)
}

// CheckFleetDoc checks that doc is a YAML mapping holding only fleet-wide
// sections, within MaxFleetDoc. It does not validate their content (see
// WithFleet).
func CheckFleetDoc(doc []byte) error {
	if len(doc) > MaxFleetDoc {
		return fmt.Errorf("fleet configuration of %d bytes exceeds %d", len(doc), MaxFleetDoc)
	}
	root, err := mappingRoot(doc)
	if err != nil {
		return err
	}
	if len(root.Content) == 0 {
		return errors.New("fleet configuration is empty: want some of " + fmt.Sprint(FleetKeys))
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		if !slices.Contains(FleetKeys, k.Value) {
			return fmt.Errorf("line %d: %q is not fleet-wide configuration (only %v are; the rest stays per box)", k.Line, k.Value, FleetKeys)
		}
	}
	return nil
}

// WithFleet returns the configuration file data with its fleet-wide
// sections replaced by those in doc (sections doc lacks are kept).
func WithFleet(data, doc []byte) ([]byte, error) {
	if err := CheckFleetDoc(doc); err != nil {
		return nil, err
	}
	root, err := mappingRoot(data)
	if err != nil {
		return nil, fmt.Errorf("the box's configuration: %w", err)
	}
	fleet, _ := mappingRoot(doc)
	for i := 0; i+1 < len(fleet.Content); i += 2 {
		key, val := fleet.Content[i], fleet.Content[i+1]
		replaced := false
		for j := 0; j+1 < len(root.Content); j += 2 {
			if root.Content[j].Value == key.Value {
				root.Content[j+1], replaced = val, true
			}
		}
		if !replaced {
			root.Content = append(root.Content, key, val)
		}
	}
	return encodeYAML(root)
}

func mappingRoot(data []byte) (*yaml.Node, error) {
	root, err := parseYAML(data)
	if err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	if root == nil {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}, nil
	}
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, errors.New("want a YAML mapping at the top")
	}
	return root, nil
}

func encodeYAML(n *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode YAML: %w", err)
	}
	return b.Bytes(), nil
}
