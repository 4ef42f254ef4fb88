package controller

import (
	"context"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/openshell-operator/openshell-operator/api/v1alpha1"
	datamodelv1 "github.com/openshell-operator/openshell-operator/gen/openshell/datamodel/v1"
	openshellv1 "github.com/openshell-operator/openshell-operator/gen/openshell/v1"
	"github.com/openshell-operator/openshell-operator/internal/gateway"
)

// Observation defaults: a full list per minute keeps steady-state reads at about
// N/page size per minute; transitional sandboxes are followed by WatchSandbox streams.
const (
	defaultObserveResync   = time.Minute
	defaultObservePageSize = 100
	defaultMaxStreams      = 64
	// fallbackListInterval lists again while some awaited sandbox has no stream (the
	// stream bound is reached, or its stream broke). These lists read only the tail of the
	// gateway's order from the oldest such sandbox on (listTail), a few pages in a burst.
	fallbackListInterval = 500 * time.Millisecond
	// fallbackDutyCycle: the fallback lists take at most this share of the loop's time; a
	// slow tail list (a large tail, a loaded gateway) spaces the next ones further.
	fallbackDutyCycle = 3
	// safetyRequeue re-checks an awaited sandbox in case an event was lost.
	safetyRequeue = 30 * time.Second
)

// managedSelector selects the gateway sandboxes this operator created.
var managedSelector = v1alpha1.LabelManagedBy + "=" + v1alpha1.ManagedByValue

// ObserverOptions tunes the per-gateway observation loop.
type ObserverOptions struct {
	// Resync is the interval of the full paginated ListSandboxes (default one minute).
	Resync time.Duration
	// PageSize of ListSandboxes (default 100).
	PageSize uint32
	// MaxStreams bounds concurrent WatchSandbox streams per gateway (default 64).
	MaxStreams int
	// FallbackInterval is the least time between two lists while some awaited sandbox has
	// no stream (default 500 ms; at least three times the last such list's duration).
	FallbackInterval time.Duration
	// DraftResync is how often a list also reports every managed sandbox to the PolicyProposal
	// discovery, which reads each one's draft chunks (one GetDraftPolicy per sandbox: the
	// gateway has no list across sandboxes). Default: every Resync (the full list); raise it to
	// trade how soon a new proposal appears for fewer reads. Streams report draft updates of
	// the sandboxes they follow at once.
	DraftResync time.Duration
	// DraftReadsPerMinute bounds the discovery's steady cost: a sweep of N sandboxes runs at
	// most every N / DraftReadsPerMinute minutes, so a large fleet is swept more slowly
	// instead of loading its gateway with N reads a minute (0: DefaultDraftReadsPerMinute;
	// negative: no bound).
	DraftReadsPerMinute int
}

// DefaultDraftReadsPerMinute is the discovery's default read budget: fleets of up to 600
// sandboxes are swept every minute, larger ones every N/600 minutes (5,000: every 8.3).
const DefaultDraftReadsPerMinute = 600

// draftSweepInterval is how long a sweep of n sandboxes' drafts waits after the last one
// (poll mode: how long one sandbox's draft waits, n its gateway's sandboxes).
func (o ObserverOptions) draftSweepInterval(n int) time.Duration {
	d, budget := o.DraftResync, o.DraftReadsPerMinute
	if budget == 0 {
		budget = DefaultDraftReadsPerMinute
	}
	if budget > 0 {
		d = max(d, time.Duration(float64(n)/float64(budget)*float64(time.Minute)))
	}
	return d
}

// sandboxView is what the Sandbox controller reads instead of calling GetSandbox.
type sandboxView interface {
	// Lookup returns the observed sandbox (a copy) and whether the view is synced: a
	// synced view without the name means the gateway had no such sandbox at the last list.
	Lookup(gateway, name string) (sb *openshellv1.Sandbox, synced bool)
	// Record stores what a mutating call returned, so the next reconcile does not act on a
	// view older than its own write.
	Record(gateway string, sb *openshellv1.Sandbox)
	// Await follows a transitional sandbox of a Sandbox in namespace until Settle.
	Await(gateway, namespace, name, id string)
	// Settle stops following a sandbox.
	Settle(gateway, name string)
	// PlatformEvents returns the platform events a stream has delivered for a sandbox id,
	// and whether one is following it (otherwise the caller reads them itself).
	PlatformEvents(gateway, id string) ([]*openshellv1.PlatformEvent, bool)
	// Watching is true when changes arrive as events (list + streams), false in poll mode.
	Watching() bool
	providerLookup
}

// maxStreamedEvents bounds the platform events kept per followed sandbox (as EventTail).
const maxStreamedEvents = 50

// Observers runs one observation loop per GatewayConnection and feeds changes to the
// Sandbox controller as generic events.
type Observers struct {
	opts   ObserverOptions
	events chan event.GenericEvent
	// providerEvents carries the Providers whose gateway provider changed or vanished.
	providerEvents chan event.GenericEvent
	// draftEvents carries the Sandboxes whose draft policy may have changed: every managed
	// sandbox at each list, and a sandbox whose stream announced a draft update.
	draftEvents chan event.GenericEvent
	mu          sync.Mutex
	loops       map[string]*observer
}

// NewObservers returns the registry; Events must be consumed by the Sandbox controller.
func NewObservers(opts ObserverOptions) *Observers {
	if opts.Resync <= 0 {
		opts.Resync = defaultObserveResync
	}
	if opts.PageSize == 0 {
		opts.PageSize = defaultObservePageSize
	}
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = defaultMaxStreams
	}
	return &Observers{opts: opts, events: make(chan event.GenericEvent, 4096), providerEvents: make(chan event.GenericEvent, 1024),
		draftEvents: make(chan event.GenericEvent, 4096), loops: map[string]*observer{}}
}

// Events is the channel of sandboxes whose observed state changed.
func (o *Observers) Events() <-chan event.GenericEvent { return o.events }

// Watching implements sandboxView: the loops deliver changes as events.
func (o *Observers) Watching() bool { return true }

// ProviderEvents is the channel of Providers whose gateway provider changed or vanished
// (drift the Provider controller heals without polling each provider).
func (o *Observers) ProviderEvents() <-chan event.GenericEvent { return o.providerEvents }

// DraftEvents is the channel of Sandboxes whose draft policy chunks may have changed, for
// the PolicyProposal discovery (the gateway has no list of drafts across sandboxes).
func (o *Observers) DraftEvents() <-chan event.GenericEvent { return o.draftEvents }

// ensure runs the loop of a gateway with cl, restarting it when the client changed (a
// re-dial) and listing at once when the gateway came back.
func (o *Observers) ensure(name string, cl *gateway.Client) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if l := o.loops[name]; l != nil {
		if l.client == cl {
			l.relistIfStale()
			return
		}
		l.stop()
	}
	l := newObserver(name, cl, o.opts, o.events)
	l.providerEvents, l.draftEvents = o.providerEvents, o.draftEvents
	o.loops[name] = l
	go l.run()
}

// stop ends the loop of a removed GatewayConnection.
func (o *Observers) stop(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if l := o.loops[name]; l != nil {
		l.stop()
		delete(o.loops, name)
	}
}

// stopAll ends every loop (manager shutdown).
func (o *Observers) stopAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for name, l := range o.loops {
		l.stop()
		delete(o.loops, name)
	}
}

func (o *Observers) loop(name string) *observer {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.loops[name]
}

// Lookup implements sandboxView.
func (o *Observers) Lookup(gw, name string) (*openshellv1.Sandbox, bool) {
	if l := o.loop(gw); l != nil {
		return l.lookup(name)
	}
	return nil, false
}

// Record implements sandboxView.
func (o *Observers) Record(gw string, sb *openshellv1.Sandbox) {
	if l := o.loop(gw); l != nil && sb != nil {
		l.record(sb)
	}
}

// Await implements sandboxView.
func (o *Observers) Await(gw, namespace, name, id string) {
	if l := o.loop(gw); l != nil {
		l.await(namespace, name, id)
	}
}

// Settle implements sandboxView.
func (o *Observers) Settle(gw, name string) {
	if l := o.loop(gw); l != nil {
		l.settle(name)
	}
}

// PlatformEvents implements sandboxView.
func (o *Observers) PlatformEvents(gw, id string) ([]*openshellv1.PlatformEvent, bool) {
	if l := o.loop(gw); l != nil {
		return l.platformEvents(id)
	}
	return nil, false
}

// RecordProvider implements providerRecorder.
func (o *Observers) RecordProvider(gw string, p *datamodelv1.Provider) {
	if l := o.loop(gw); l != nil && p != nil {
		l.recordProvider(p)
	}
}

// ProviderMeta implements providerLookup: the metadata of a managed gateway provider as the
// last list (or the Provider controller's last write) saw it.
func (o *Observers) ProviderMeta(gw, name string) (*datamodelv1.ObjectMeta, bool) {
	l := o.loop(gw)
	if l == nil {
		return nil, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	md, ok := l.providers[name]
	return md, ok
}

// observer is the loop of one gateway.
type observer struct {
	name   string
	client *gateway.Client
	opts   ObserverOptions
	events chan<- event.GenericEvent
	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{}

	mu       sync.Mutex
	view     map[string]*openshellv1.Sandbox
	synced   bool
	waiting  map[string]awaited // by gateway name
	awaitSeq uint64
	// seen is when (in seenSeq) a write or a stream last showed each sandbox, for lists.
	seen    map[string]uint64
	seenSeq uint64
	streams map[string]context.CancelFunc
	// order is the gateway's list order (creation time, then name) at the last list: where
	// a tail list starts.
	order          []listKey
	providerEvents chan<- event.GenericEvent
	draftEvents    chan<- event.GenericEvent
	draftsListed   time.Time
	// providers are the managed gateway providers' metadata (resource version, ownership
	// labels) at the last list, plus those the Provider controller converged since.
	providers       map[string]*datamodelv1.ObjectMeta
	providersListed time.Time
	// platform are the platform events streamed per sandbox id, while it is followed.
	platform map[string][]*openshellv1.PlatformEvent
}

func newObserver(name string, cl *gateway.Client, opts ObserverOptions, events chan<- event.GenericEvent) *observer {
	if opts.DraftResync <= 0 {
		opts.DraftResync = opts.Resync
	}
	if opts.FallbackInterval <= 0 {
		opts.FallbackInterval = fallbackListInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &observer{name: name, client: cl, opts: opts, events: events, ctx: ctx, cancel: cancel,
		wake: make(chan struct{}, 1), view: map[string]*openshellv1.Sandbox{},
		seen: map[string]uint64{}, waiting: map[string]awaited{}, streams: map[string]context.CancelFunc{},
		platform: map[string][]*openshellv1.PlatformEvent{}}
}

func (l *observer) stop() { l.cancel() }

func (l *observer) relistIfStale() {
	l.mu.Lock()
	stale := !l.synced
	l.mu.Unlock()
	if stale {
		l.poke()
	}
}

func (l *observer) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *observer) run() {
	log := logf.Log.WithName("observer").WithValues("gatewayConnection", l.name)
	next := time.Duration(0)
	// listed is when the last list started, fullListed the last full one; tailTook is how
	// long the last tail list took.
	var listed, fullListed time.Time
	var tailTook time.Duration
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-time.After(next):
		case <-l.wake:
			// A wake shortens a long wait, it does not list at once: a burst of sandboxes
			// over the stream bound pokes once per sandbox, and a list per poke (N/page size
			// pages each) spent more CPU than the burst's own work at N = 1000. A view that
			// is not synced lists at once.
			if wait := l.fallbackSpacing(tailTook) - time.Since(listed); wait > 0 && l.isSynced() {
				select {
				case <-l.ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		listed = time.Now()
		full, err := l.listOnce(listed, time.Since(fullListed) >= l.opts.Resync)
		if !full {
			tailTook = time.Since(listed)
		}
		if err != nil {
			log.V(1).Info("list sandboxes failed; controllers read the gateway directly until the next list", "error", err.Error())
			next = l.opts.Resync / 4
			continue
		}
		if full {
			fullListed = listed
			if err := l.listProviders(listed); err != nil {
				log.V(1).Info("list providers failed", "error", err.Error())
			}
		}
		next = l.opts.Resync - time.Since(fullListed)
		if l.unstreamed() {
			next = min(next, l.fallbackSpacing(tailTook)-time.Since(listed))
		}
	}
}

// listOnce lists everything when a full list is due or the view is stale, else only the
// tail of the gateway's order that the awaited sandboxes without a stream are in. at is when
// the loop started this list.
func (l *observer) listOnce(at time.Time, fullDue bool) (full bool, err error) {
	if fullDue || !l.isSynced() {
		return true, l.list(at)
	}
	return l.listTail(at)
}

// fallbackSpacing is the least time between the starts of two fallback lists.
func (l *observer) fallbackSpacing(tailTook time.Duration) time.Duration {
	return max(l.opts.FallbackInterval, fallbackDutyCycle*tailTook)
}

func (l *observer) isSynced() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.synced
}

// list replaces the view with a paginated list and emits an event per difference. at is
// when the loop started it: the draft sweep is timed from list starts, which are a Resync
// apart (timed from the list's end, every other list fell short of the interval by the
// list's own duration, and the sweep ran every two minutes instead of one).
func (l *observer) list(at time.Time) error {
	since := l.seenMark()
	all, err := l.client.Sandboxes.ListAll(l.ctx, managedSelector, l.opts.PageSize)
	if err != nil {
		l.mu.Lock()
		l.synced = false
		l.mu.Unlock()
		return err
	}
	changed, fresh := l.mergeFull(all, since)
	for _, sb := range changed {
		l.emit(sb)
	}
	l.mu.Lock()
	draftsDue := l.draftsListed.IsZero() || at.Sub(l.draftsListed) >= l.opts.draftSweepInterval(len(fresh))
	if draftsDue {
		l.draftsListed = at
	}
	l.mu.Unlock()
	if draftsDue {
		for _, sb := range fresh {
			l.emitDraft(sb)
		}
	}
	return nil
}

// mergeFull makes a full list (started at seen mark since) the view and returns what changed
// and the new view. What a write or a stream showed after the list started stays when it is
// a newer state than the listed one, or a sandbox created after its page was read. (A list whose
// page was read just before a stream's READY used to put the sandbox back to PROVISIONING;
// its reconcile then saw nothing more to come from the stream and waited for the 30 s safety
// requeue: found by make bench at N = 100.)
func (l *observer) mergeFull(all []*openshellv1.Sandbox, since uint64) (changed []*openshellv1.Sandbox, fresh map[string]*openshellv1.Sandbox) {
	fresh = make(map[string]*openshellv1.Sandbox, len(all))
	for _, sb := range all {
		fresh[sb.GetMetadata().GetName()] = sb
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, sb := range l.view {
		if l.outranksListLocked(name, sb, fresh[name], since) {
			fresh[name] = sb
		}
	}
	for name, at := range l.seen {
		if at <= since {
			delete(l.seen, name)
		}
	}
	changed = diffSandboxViews(l.view, fresh)
	l.view, l.synced, l.order = fresh, true, keysOf(all)
	for name := range l.waiting {
		// Gone from the gateway and not streamed: nothing left to follow; the controller
		// learns of the absence from the emitted change.
		if fresh[name] == nil && l.streams[name] == nil {
			delete(l.waiting, name)
		}
	}
	return changed, fresh
}

// emitDraft enqueues the Sandbox of a gateway sandbox for the draft discovery.
func (l *observer) emitDraft(sb *openshellv1.Sandbox) {
	labels := sb.GetMetadata().GetLabels()
	ns, name := labels[v1alpha1.LabelNamespace], labels[v1alpha1.LabelName]
	if l.draftEvents == nil || ns == "" || name == "" {
		return
	}
	select {
	case l.draftEvents <- event.GenericEvent{Object: &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}}:
	case <-l.ctx.Done():
	}
}

// listProviders lists the managed gateway providers and enqueues the Providers whose
// gateway provider appeared, changed (resource version) or vanished since the last list. It
// runs with the full lists of sandboxes (at is when the loop started that list), at most
// once a Resync: not with the fallback lists, nor with each retry after a failed list.
func (l *observer) listProviders(at time.Time) error {
	l.mu.Lock()
	due := l.providersListed.IsZero() || at.Sub(l.providersListed) >= l.opts.Resync
	l.mu.Unlock()
	if !due || l.providerEvents == nil {
		return nil
	}
	all, err := l.client.Providers.ListAll(l.ctx, l.opts.PageSize)
	if err != nil {
		return err
	}
	fresh := map[string]*datamodelv1.ObjectMeta{}
	for _, p := range all {
		if md := p.GetMetadata(); md.GetLabels()[v1alpha1.LabelManagedBy] == v1alpha1.ManagedByValue {
			fresh[md.GetName()] = md
		}
	}
	l.mu.Lock()
	old := l.providers
	l.providers, l.providersListed = fresh, at
	l.mu.Unlock()
	// The first list compares with what the controller recorded since the start (nothing
	// else is known yet: the Provider controller reconciles every Provider at start anyway).
	for name, md := range fresh {
		if prev, ok := old[name]; !ok || prev.GetResourceVersion() != md.GetResourceVersion() {
			l.emitProvider(md.GetLabels())
		}
	}
	for name, md := range old {
		if _, ok := fresh[name]; !ok {
			l.emitProvider(md.GetLabels())
		}
	}
	return nil
}

// recordProvider adds a provider the controller converged to the last list's view.
func (l *observer) recordProvider(p *datamodelv1.Provider) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.providers == nil {
		l.providers = map[string]*datamodelv1.ObjectMeta{}
	}
	l.providers[p.GetMetadata().GetName()] = proto.Clone(p.GetMetadata()).(*datamodelv1.ObjectMeta)
}

func (l *observer) emitProvider(labels map[string]string) {
	ns, name := labels[v1alpha1.LabelNamespace], labels[v1alpha1.LabelName]
	if ns == "" || name == "" {
		return
	}
	select {
	case l.providerEvents <- event.GenericEvent{Object: &v1alpha1.Provider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}}:
	case <-l.ctx.Done():
	}
}

// diffSandboxViews returns the sandboxes that appeared, changed (resource version) or
// disappeared between two views, each as its newest known object.
func diffSandboxViews(old, cur map[string]*openshellv1.Sandbox) []*openshellv1.Sandbox {
	var out []*openshellv1.Sandbox
	for name, sb := range cur {
		if prev, ok := old[name]; !ok || prev.GetMetadata().GetResourceVersion() != sb.GetMetadata().GetResourceVersion() {
			out = append(out, sb)
		}
	}
	for name, sb := range old {
		if _, ok := cur[name]; !ok {
			out = append(out, sb)
		}
	}
	return out
}

// emit enqueues the Sandbox resource that owns a gateway sandbox (from its labels).
func (l *observer) emit(sb *openshellv1.Sandbox) {
	labels := sb.GetMetadata().GetLabels()
	ns, name := labels[v1alpha1.LabelNamespace], labels[v1alpha1.LabelName]
	if ns == "" || name == "" {
		return
	}
	obj := &v1alpha1.Sandbox{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	select {
	case l.events <- event.GenericEvent{Object: client.Object(obj)}:
	case <-l.ctx.Done():
	}
}

func (l *observer) lookup(name string) (*openshellv1.Sandbox, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.synced {
		return nil, false
	}
	sb := l.view[name]
	if sb == nil {
		return nil, true
	}
	return proto.Clone(sb).(*openshellv1.Sandbox), true
}

// record keeps the newer of the view's object and sb (resource versions only grow).
func (l *observer) record(sb *openshellv1.Sandbox) {
	name := sb.GetMetadata().GetName()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seenLocked(name)
	if prev := l.view[name]; prev != nil && laterState(prev, sb) {
		return
	}
	l.view[name] = proto.Clone(sb).(*openshellv1.Sandbox)
}

// outranksListLocked: the view's sb stays although a list started at seen mark since has
// listed (nil: missed) name. Only what a write or a stream showed while the list ran
// outranks it, when newer than the listed state or missed by it; anything older the list
// replaces, so a list still resets a view that went wrong (a gateway restored from a backup,
// creation times from a skewed clock).
func (l *observer) outranksListLocked(name string, sb, listed *openshellv1.Sandbox, since uint64) bool {
	return l.seen[name] > since && (listed == nil || laterState(sb, listed))
}

// seenLocked notes that a write or a stream has just shown the gateway holding name.
func (l *observer) seenLocked(name string) {
	l.seenSeq++
	l.seen[name] = l.seenSeq
}

// seenMark is taken when a list starts: a sandbox seen after it and missing from the list
// was created (or written) after its page was read, so the list is no proof it is gone.
func (l *observer) seenMark() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seenSeq
}

// laterState: a is a later state of the name than b: the same sandbox at a higher resource
// version, or a sandbox created later (a recreate). Resource versions count per sandbox, so
// a new sandbox starts below the one it replaced, and comparing them across ids would keep
// the deleted one.
func laterState(a, b *openshellv1.Sandbox) bool {
	am, bm := a.GetMetadata(), b.GetMetadata()
	if am.GetId() == bm.GetId() {
		return am.GetResourceVersion() > bm.GetResourceVersion()
	}
	return am.GetCreatedAtMs() > bm.GetCreatedAtMs()
}
