package main

import (
	"log/slog"

	"postern.dev/postern/internal/sdnotify"
)

// notifySystemd tells systemd the service's state (Type=notify in
// dist/postern.service): READY=1 once every listener accepts connections,
// STOPPING=1 when shutdown begins. Outside systemd it does nothing.
func notifySystemd(log *slog.Logger, state string) {
	if _, err := sdnotify.Notify(state); err != nil {
		log.Warn("sd_notify failed", "err", err)
	}
}
