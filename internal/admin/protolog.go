package admin

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/protolog"
)

// Protocol logging is Exchange on-premises' receive connector setting
// (Set-ReceiveConnector -ProtocolLoggingLevel Verbose|None): Postern's
// three listeners are its receive connectors, under the names Exchange
// gives the default connectors on the same ports (protolog.Connectors).
// Get-/Set-ReceiveConnector are server cmdlets (cmdlet.ServerAccess): a
// listener's log holds the sessions of every organization, so only the
// server's administrator turns it on or reads it, and no organization's
// admin sees another's devices.
//
// An organization logs its own inbound connectors instead
// (Set-InboundConnector -ProtocolLoggingLevel Verbose): those sessions are
// written, masked for it, to its own log (package protolog, Pending), and
// Get-ProtocolLog -Identity <connector> reads them back for its admins.

// Protocol logging levels, as Exchange names them.
const (
	LoggingVerbose = directory.LoggingVerbose
	LoggingNone    = directory.LoggingNone
)

// ReceiveConnector is a listener as Get-ReceiveConnector shows it.
type ReceiveConnector struct {
	Identity             string
	Role                 string
	Port                 int
	ProtocolLoggingLevel string
}

// ReceiveConnectors lists the listeners and their protocol logging level.
func (s *Service) ReceiveConnectors(ctx context.Context) ([]ReceiveConnector, error) {
	levels, err := s.Store.ReceiveConnectorLevels(ctx)
	if err != nil {
		return nil, err
	}
	var out []ReceiveConnector
	for _, c := range protolog.Connectors {
		level := LoggingNone
		if strings.EqualFold(levels[c.Identity], LoggingVerbose) {
			level = LoggingVerbose
		}
		out = append(out, ReceiveConnector{Identity: c.Identity, Role: c.Role, Port: c.Port, ProtocolLoggingLevel: level})
	}
	return out, nil
}

// SetProtocolLoggingLevel stores a listener's level and applies it to the
// running server's log at once (new connections; sessions in progress
// keep the level they started with).
func (s *Service) SetProtocolLoggingLevel(ctx context.Context, identity, level string) error {
	c, ok := protolog.ConnectorByName(identity)
	if !ok {
		return NotFound(identity)
	}
	if !strings.EqualFold(level, LoggingVerbose) && !strings.EqualFold(level, LoggingNone) {
		return invalidValue("ProtocolLoggingLevel", level, `the level must be "Verbose" or "None"`)
	}
	verbose := strings.EqualFold(level, LoggingVerbose)
	stored := LoggingNone
	if verbose {
		stored = LoggingVerbose
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.Store.SetReceiveConnectorLevel(ctx, c.Identity, stored); err != nil {
		return err
	}
	if s.ProtocolLog != nil {
		s.ProtocolLog.SetVerbose(c.Identity, verbose)
	}
	return nil
}

// applyProtocolLogging gives the running server's log the stored levels.
func (s *Service) applyProtocolLogging(ctx context.Context) error {
	if s.ProtocolLog == nil {
		return nil
	}
	levels, err := s.Store.ReceiveConnectorLevels(ctx)
	if err != nil {
		return err
	}
	for id, level := range levels {
		s.ProtocolLog.SetVerbose(id, strings.EqualFold(level, LoggingVerbose))
	}
	return nil
}

// ProtocolLogQuery is Get-ProtocolLog's parameters.
type ProtocolLogQuery struct {
	ClientIP string
	Since    time.Time
	// Identity limits the records to one listener, or to one inbound
	// connector of the organization; empty: all (the server's
	// administrator only).
	Identity   string
	ResultSize int
}

// ReadProtocolLog reads the protocol log back. It needs the running server
// (the log's files are in its data directory, and the cmdlet runs in it
// through the admin socket); without -Since it covers the last 24 hours.
//
// The server's administrator reads a listener (-Identity "Client
// Frontend"), an inbound connector of the organization acted on, or, with
// no -Identity, everything. An organization's admin reads only its own
// inbound connectors' log, and must name one: a listener's log, or
// everything, is refused (ErrAccessDenied) as it always was, and another
// organization's connector is not found. Checked here, so that every front
// end goes through it.
func (s *Service) ReadProtocolLog(ctx context.Context, q ProtocolLogQuery) ([]protolog.Record, error) {
	if s.scoped && q.Identity == "" {
		return nil, &kindError{ErrAccessDenied, "Get-ProtocolLog without -Identity reads the listeners' logs, which hold every organization's sessions; only the server's administrator can run it. Name one of the organization's inbound connectors with -Identity."}
	}
	if s.ProtocolLog == nil {
		return nil, errNoProtocolLog
	}
	pq := protolog.Query{Since: q.Since, Limit: q.ResultSize}
	if pq.Since.IsZero() {
		pq.Since = time.Now().Add(-24 * time.Hour)
	}
	if pq.Limit <= 0 {
		pq.Limit = 1000
	}
	if q.ClientIP != "" {
		ip, err := netip.ParseAddr(q.ClientIP)
		if err != nil {
			return nil, invalidValue("ClientIP", q.ClientIP, "give an IPv4 or IPv6 address")
		}
		pq.ClientIP = ip
	}
	if q.Identity == "" {
		return s.readAllProtocolLogs(pq)
	}
	listener, isListener := protolog.ConnectorByName(q.Identity)
	if isListener && !s.scoped {
		pq.Connectors = []string{listener.Identity}
		return s.ProtocolLog.Read(pq)
	}
	cs, err := s.InboundConnectors(q.Identity)
	if err != nil {
		if isListener {
			return nil, &kindError{ErrAccessDenied, fmt.Sprintf("The protocol log of receive connector '%s' holds every organization's sessions; only the server's administrator can read it.", listener.Identity)}
		}
		return nil, err
	}
	pq.Connectors = []string{cs[0].Name}
	return s.ProtocolLog.ReadOrg(s.org().ID, pq)
}

// readAllProtocolLogs is the server administrator's view: the listeners'
// log and every organization's connector logs, merged by time, the newest
// pq.Limit records.
func (s *Service) readAllProtocolLogs(pq protolog.Query) ([]protolog.Record, error) {
	out, err := s.ProtocolLog.Read(pq)
	if err != nil {
		return nil, err
	}
	ids, err := s.ProtocolLog.OrgIDs()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		recs, err := s.ProtocolLog.ReadOrg(id, pq)
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	// Stable: the records of one session keep their order.
	slices.SortStableFunc(out, func(a, b protolog.Record) int { return a.Time.Compare(b.Time) })
	if len(out) > pq.Limit {
		out = out[len(out)-pq.Limit:]
	}
	return out, nil
}

var errNoProtocolLog = errorString("The protocol log is read from the running server: start postern serve and run the cmdlet again.")

type errorString string

func (e errorString) Error() string { return string(e) }

func (c *cmdlets) protocolLogSpecs() []cmdlet.Spec {
	return []cmdlet.Spec{
		{Name: "Get-ReceiveConnector", Output: "ReceiveConnector", Access: cmdlet.ServerAccess, REST: cmdletOnly, Synopsis: "Lists the SMTP listeners under Exchange's receive connector names, with their protocol logging level.",
			Params: []cmdlet.ParamSpec{{Name: "Identity", Type: cmdlet.String, Position: 0}}, Run: c.getReceiveConnector},
		{Name: "Set-ReceiveConnector", Output: cmdlet.NoOutput, Access: cmdlet.ServerAccess, REST: cmdletOnly, Synopsis: "Turns protocol logging of a listener on (-ProtocolLoggingLevel Verbose) or off (None).", SupportsWhatIf: true,
			Params: []cmdlet.ParamSpec{{Name: "Identity", Type: cmdlet.String, Position: 0, Required: true},
				{Name: "ProtocolLoggingLevel", Type: cmdlet.Enum, Position: -1, Required: true, ValidValues: []string{LoggingVerbose, LoggingNone}}},
			Run: c.setReceiveConnector},
		{Name: "Get-ProtocolLog", Output: "ProtocolLogEntry", Access: cmdlet.ReadAccess, REST: cmdletOnly, Synopsis: "Reads the SMTP conversations of logged listeners and inbound connectors (passwords masked, bodies by size only, other organizations' addresses masked); -Identity names a listener or an inbound connector (an organization's admin must name one of its connectors); the last 24 hours unless -Since is given.",
			Params: []cmdlet.ParamSpec{{Name: "ClientIP", Type: cmdlet.String, Position: -1}, {Name: "Since", Type: cmdlet.String, Position: -1},
				{Name: "Identity", Type: cmdlet.String, Position: -1}, {Name: "ResultSize", Type: cmdlet.IntOrUnlimited, Position: -1}},
			Run: c.getProtocolLog},
	}
}

func (c *cmdlets) getReceiveConnector(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	rcs, err := c.svc.ReceiveConnectors(ctx)
	if err != nil {
		return nil, err
	}
	if id := inv.String("Identity"); id != "" {
		want, ok := protolog.ConnectorByName(id)
		if !ok {
			return nil, NotFound(id)
		}
		var one []ReceiveConnector
		for _, rc := range rcs {
			if rc.Identity == want.Identity {
				one = append(one, rc)
			}
		}
		rcs = one
	}
	return objects(rcs, nil, func(rc ReceiveConnector) *cmdlet.Object {
		return &cmdlet.Object{TypeName: "ReceiveConnector", DefaultView: cmdlet.TableView,
			DefaultDisplay: []string{"Identity", "Role", "Port", "ProtocolLoggingLevel"},
			Props: []cmdlet.Prop{{Name: "Identity", Value: rc.Identity}, {Name: "Role", Value: rc.Role},
				{Name: "Port", Value: rc.Port}, {Name: "ProtocolLoggingLevel", Value: rc.ProtocolLoggingLevel}}}
	})
}

func (c *cmdlets) setReceiveConnector(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if _, ok := protolog.ConnectorByName(inv.String("Identity")); !ok {
		return nil, NotFound(inv.String("Identity"))
	}
	if whatIf(inv, "Setting the protocol logging level of receive connector %q to %s.", inv.String("Identity"), inv.String("ProtocolLoggingLevel")) {
		return nil, nil
	}
	return nil, c.svc.SetProtocolLoggingLevel(ctx, inv.String("Identity"), inv.String("ProtocolLoggingLevel"))
}

func (c *cmdlets) getProtocolLog(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	q := ProtocolLogQuery{ClientIP: inv.String("ClientIP"), Identity: inv.String("Identity"), ResultSize: traceResultSize(inv, 1000)}
	if inv.Has("Since") {
		t, err := ParseDate("Since", inv.String("Since"))
		if err != nil {
			return nil, err
		}
		q.Since = t
	}
	recs, err := c.svc.ReadProtocolLog(ctx, q)
	return objects(recs, err, func(r protolog.Record) *cmdlet.Object {
		return &cmdlet.Object{TypeName: "ProtocolLogEntry", DefaultView: cmdlet.TableView,
			DefaultDisplay: []string{"DateTime", "SessionId", "ClientIP", "Event", "Data"},
			Props: []cmdlet.Prop{{Name: "DateTime", Value: r.Time}, {Name: "Connector", Value: r.Connector},
				{Name: "SessionId", Value: r.Session}, {Name: "SequenceNumber", Value: r.Sequence},
				{Name: "ClientIP", Value: r.Remote}, {Name: "Event", Value: r.Event}, {Name: "Data", Value: r.Data}}}
	})
}
