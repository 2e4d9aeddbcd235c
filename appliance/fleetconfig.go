package appliance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/deskgate/deskgate/appliance/config"
	"github.com/deskgate/deskgate/internal/atomicfile"
)

// Fleet-wide configuration (docs/fleet.md): the fleet's document of
// plans, groups, locations and roaming, once applied, lives in
// <data_dir>/fleet/config.yaml and replaces those sections of the
// configuration file; everything else stays the box's own.

func (a *App) fleetDocPath(cfg *config.Config) string {
	return filepath.Join(cfg.DataDir, "fleet", "config.yaml")
}

// loadConfig reads the configuration file with the fleet's document, if
// this box applied one, in place of its fleet-wide sections.
func (a *App) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(a.cfgPath)
	if err != nil {
		return nil, err
	}
	doc, err := os.ReadFile(a.fleetDocPath(cfg))
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the fleet configuration: %w", err)
	}
	return a.parseWithFleet(doc)
}

// parseWithFleet validates the configuration file with doc's sections.
func (a *App) parseWithFleet(doc []byte) (*config.Config, error) {
	base, err := os.ReadFile(a.cfgPath)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", a.cfgPath, err)
	}
	merged, err := config.WithFleet(base, doc)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse(merged, a.cfgPath)
	if err != nil {
		return nil, fmt.Errorf("with the fleet configuration: %w", err)
	}
	return cfg, nil
}

// withFleetConfig is cfg with the fleet's document applied at start; a
// document that no longer validates with this box's file is ignored
// (logged) rather than keeping the daemon down.
func (a *App) withFleetConfig(cfg *config.Config) *config.Config {
	if a.cfgPath == "" {
		return cfg
	}
	if _, err := os.Stat(a.fleetDocPath(cfg)); err != nil {
		return cfg
	}
	c, err := a.loadConfig()
	if err != nil {
		a.log.Error("fleet configuration not applied: it does not validate with this box's configuration file", "err", err)
		return cfg
	}
	return c
}

func (a *App) checkFleetConfig(doc []byte) error {
	if a.cfgPath == "" {
		return errors.New("this box runs without a configuration file")
	}
	_, err := a.parseWithFleet(doc)
	return err
}

// applyFleetConfig stores doc as the box's fleet document and reloads.
func (a *App) applyFleetConfig(doc []byte) error {
	p := a.fleetDocPath(a.Config())
	old, oldErr := os.ReadFile(p)
	if err := atomicfile.Write(p, doc, 0o600); err != nil {
		return fmt.Errorf("store the fleet configuration: %w", err)
	}
	if err := a.Reload(); err != nil {
		// Keep the previous document, the one the running config has.
		if oldErr == nil {
			_ = atomicfile.Write(p, old, 0o600)
		} else {
			_ = os.Remove(p)
		}
		return err
	}
	return nil
}
