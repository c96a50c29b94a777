package main

import (
	"os"

	"github.com/planflag/planflag/alert"
	"github.com/planflag/planflag/careplanclient"
)

// setupLinksAndAudit turns on plan links (with -link.key-file, or an
// ephemeral key under -demo) and the audit trail (-audit.file).
func (m *Main) setupLinksAndAudit() error {
	var keys *careplanclient.Keys
	switch {
	case m.Config.LinkKeyFile != "":
		k, err := careplanclient.LoadKeys(m.Config.LinkKeyFile)
		if err != nil {
			return err
		}
		keys = k
	case m.Config.Demo:
		keys = careplanclient.RandomKeys("demo")
	default:
		m.Log.Warn("no -link.key-file: answers carry no plan links")
	}
	if keys != nil {
		m.api.SetLinker(&careplanclient.Linker{Base: m.Config.LinkBaseURL, TTL: m.Config.LinkTTL, Keys: keys})
	}
	if m.Config.AuditFile != "" {
		f, err := os.OpenFile(m.Config.AuditFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		m.auditor = alert.NewAuditor(f, 65536, m.Log, m.metrics.Registry)
		m.api.SetAuditor(m.auditor)
	}
	return nil
}
