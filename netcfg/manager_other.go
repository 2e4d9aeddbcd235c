//go:build !linux

package netcfg

import (
	"context"
	"errors"
)

var errUnsupported = errors.New("netcfg: only supported on linux")

// New returns an error: netcfg programs the Linux kernel only.
func New(opts Options) (Manager, error) { return nil, errUnsupported }

// CleanUp returns an error: netcfg programs the Linux kernel only.
func CleanUp(ctx context.Context, opts Options) error { return errUnsupported }
