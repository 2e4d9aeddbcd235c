// Package guestnet owns the vocabulary the captive portal and the guest
// lifecycle share: a client on the guest network, its session and the
// session kinds, the login errors, and the Network that opens and closes the
// guest network for a client.
//
// portal declares its Backend and Network in these types and appliance/guests
// implements them, so neither imports the other and the composition root
// hands the guest Manager to the portal as it is. guestnet imports nothing of
// deskgate.
package guestnet

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// Client identifies a device on the guest network.
type Client struct {
	MAC net.HardwareAddr
	IP  netip.Addr
}

// String returns "mac/ip" for logs.
func (c Client) String() string { return c.MAC.String() + "/" + c.IP.String() }

// Session is a client's current guest-network session.
type Session struct {
	ID         string
	Kind       string // KindGuest, KindDayPass or KindMember
	Name       string
	Until      time.Time
	CanExtend  bool
	MemberID   string
	LocationID string
}

// Session kinds.
const (
	KindGuest   = "guest"
	KindDayPass = "daypass"
	KindMember  = "member"
)

// Login errors (possibly wrapped). The portal maps them to friendly,
// translated messages; any other error is a generic failure.
var (
	ErrBadCode        = errors.New("unknown code")
	ErrNotYetValid    = errors.New("code not valid yet")
	ErrExpired        = errors.New("code expired")
	ErrWrongLocation  = errors.New("code not valid at this location")
	ErrDeviceLimit    = errors.New("device limit reached for this code")
	ErrBadCredentials = errors.New("wrong email or password")
	ErrNoWiFi         = errors.New("no WiFi access for this member")
)

// Network opens and closes the guest network for one client (netcfg).
// Allow is idempotent and moves the end of an existing allowance.
type Network interface {
	Allow(ctx context.Context, c Client, until time.Time) error
	Revoke(ctx context.Context, c Client) error
}
