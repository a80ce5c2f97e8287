package etcd

import (
	"log/slog"
	"reflect"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const (
	ttl    = 10 * time.Second
	renew  = 2 * time.Second
	margin = 2 * time.Second
)

func newM(t *testing.T, mut func(*Config)) *Machine {
	t.Helper()
	cfg := Config{Node: "h1", AdvSkew: 100, Renew: renew, Margin: margin}
	if mut != nil {
		mut(&cfg)
	}
	m, err := NewMachine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// find returns the actions of type T in acts.
func find[T Action](acts []Action) []T {
	var r []T
	for _, a := range acts {
		if x, ok := a.(T); ok {
			r = append(r, x)
		}
	}
	return r
}

// leased starts m and grants lease 7 sent at t0.
func leased(t *testing.T, m *Machine) {
	t.Helper()
	if g := find[Grant](m.Step(t0, Start{})); len(g) != 1 {
		t.Fatal("no Grant at start")
	}
	acts := m.Step(at(50*time.Millisecond), Granted{ID: 7, TTL: ttl, Sent: t0})
	if len(find[PutMember](acts)) != 1 {
		t.Fatalf("no PutMember after the grant: %v", acts)
	}
	m.Step(at(55*time.Millisecond), MemberPut{})
}

// listened is when a node leased by leased may campaign first.
var listened = at(55*time.Millisecond + DefaultRankStep)

// won makes m the holder with tenure 42.
func won(t *testing.T, m *Machine) {
	t.Helper()
	leased(t, m)
	acts := m.Step(at(60*time.Millisecond), View{Rev: 5, Members: map[string]Member{}})
	if len(find[Campaign](acts)) != 0 {
		t.Fatalf("campaigned before listening for a rank step: %v", acts)
	}
	if !m.NextDeadline().Equal(listened) {
		t.Fatalf("next deadline %v, want %v", m.NextDeadline().Sub(t0), listened.Sub(t0))
	}
	acts = m.Step(listened, Tick{})
	if len(find[Campaign](acts)) != 1 {
		t.Fatalf("no Campaign with the key absent and nobody better: %v", acts)
	}
	acts = m.Step(listened.Add(10*time.Millisecond), Campaigned{Lease: 7, Won: true, Tenure: 42})
	h := find[Hold](acts)
	if len(h) != 1 || !h[0].On || h[0].Tenure != 42 || !h[0].Until.Equal(t0.Add(ttl-margin)) {
		t.Fatalf("want Hold on until t0+8s, tenure 42: %v", acts)
	}
}

func TestWinHoldsUntilD(t *testing.T) {
	m := newM(t, nil)
	won(t, m)
	if !m.Holding() || m.Tenure() != 42 {
		t.Fatal("not holding")
	}
}

// TestFenceReleasesAtD: with no acknowledged renewal the holder releases
// at D = t_s + TTL - M exactly, and not a moment before.
func TestFenceReleasesAtD(t *testing.T) {
	m := newM(t, nil)
	won(t, m)
	d := t0.Add(ttl - margin)
	if got := m.NextDeadline(); got.After(d) {
		t.Fatalf("next deadline %v after D %v", got, d)
	}
	// Renewals go out and fail with no answer.
	for now := at(2 * time.Second); now.Before(d); now = now.Add(renew) {
		acts := m.Step(now, Tick{})
		if len(find[Hold](acts)) != 0 {
			t.Fatalf("hold changed at %v before D", now.Sub(t0))
		}
		for _, r := range find[Renew](acts) {
			m.Step(now.Add(time.Second), RenewFailed{ID: r.ID, Err: errTest})
		}
	}
	if acts := m.Step(d.Add(-time.Nanosecond), Tick{}); len(find[Hold](acts)) != 0 {
		t.Fatal("released before D")
	}
	h := find[Hold](m.Step(d, Tick{}))
	if len(h) != 1 || h[0].On || h[0].Reason != ReasonFence {
		t.Fatalf("want release at D: %v", h)
	}
	// A late acknowledgement of a renewal sent at t0+6s brings it back:
	// the lease lived, so the key is still ours.
	h = find[Hold](m.Step(d.Add(time.Second), Renewed{ID: 7, TTL: ttl, Sent: at(6 * time.Second)}))
	if len(h) != 1 || !h[0].On || !h[0].Until.Equal(at(14*time.Second)) {
		t.Fatalf("want hold again until t0+14s: %v", h)
	}
}

var errTest = errorString("test: no answer")

type errorString string

func (e errorString) Error() string { return string(e) }

// TestRenewMovesDForwardOnly: D follows the send time of the latest
// acknowledged renewal; an older one answered late does not move it back.
func TestRenewMovesDForwardOnly(t *testing.T) {
	m := newM(t, nil)
	won(t, m)
	h := find[Hold](m.Step(at(2100*time.Millisecond), Renewed{ID: 7, TTL: ttl, Sent: at(2 * time.Second)}))
	if len(h) != 1 || !h[0].Until.Equal(at(10*time.Second)) {
		t.Fatalf("want hold until t0+10s: %v", h)
	}
	m.Step(at(2200*time.Millisecond), Renewed{ID: 7, TTL: ttl, Sent: at(time.Second)})
	if !m.Deadline().Equal(at(10 * time.Second)) {
		t.Fatalf("D moved back to %v", m.Deadline().Sub(t0))
	}
	// A renewal of another lease is ignored.
	m.Step(at(2300*time.Millisecond), Renewed{ID: 8, TTL: ttl, Sent: at(2200 * time.Millisecond)})
	if !m.Deadline().Equal(at(10 * time.Second)) {
		t.Fatal("a foreign lease's renewal moved D")
	}
}

// TestRankDelay: a candidate with a better live member waits rank × step
// from the moment the key was seen absent; a winner seen first cancels it.
func TestRankDelay(t *testing.T) {
	// At start, the rank delay counts from the end of the listening period.
	m0 := newM(t, nil)
	leased(t, m0)
	m0.Step(at(60*time.Millisecond), View{Rev: 5, Members: map[string]Member{"h0": {AdvSkew: 0, Healthy: true}}})
	if got, want := m0.NextDeadline(), listened.Add(DefaultRankStep); !got.Equal(want) {
		t.Fatalf("at start: next deadline %v, want %v", got.Sub(t0), want.Sub(t0))
	}

	m := newM(t, nil)
	leased(t, m)
	members := map[string]Member{
		"h0": {AdvSkew: 0, Healthy: true},
		"h2": {AdvSkew: 50, Healthy: true},
		"h3": {AdvSkew: 200, Healthy: true},
		"h1": {AdvSkew: 100, Healthy: true},
	}
	absent := at(time.Second) // after the listening period
	if c := find[Campaign](m.Step(absent, View{Rev: 5, Members: members})); len(c) != 0 {
		t.Fatal("campaigned at once with two better members")
	}
	if got, want := m.NextDeadline(), absent.Add(2*DefaultRankStep); !got.Equal(want) {
		t.Fatalf("next deadline %v, want %v", got.Sub(t0), want.Sub(t0))
	}
	if c := find[Campaign](m.Step(absent.Add(2*DefaultRankStep-time.Millisecond), Tick{})); len(c) != 0 {
		t.Fatal("campaigned before its rank delay")
	}
	if c := find[Campaign](m.Step(absent.Add(2*DefaultRankStep), Tick{})); len(c) != 1 {
		t.Fatal("no campaign after its rank delay")
	}
	// Another round: the better member wins first.
	m2 := newM(t, nil)
	leased(t, m2)
	m2.Step(absent, View{Rev: 5, Members: members})
	m2.Step(absent.Add(300*time.Millisecond), View{Rev: 6, Members: members,
		Leader: Leader{Present: true, Node: "h0", CreateRev: 6, Lease: 99}})
	if c := find[Campaign](m2.Step(absent.Add(2*time.Second), Tick{})); len(c) != 0 {
		t.Fatal("campaigned with a leader present")
	}
	// Unhealthy better members and worse ones do not delay it.
	m3 := newM(t, nil)
	leased(t, m3)
	acts := m3.Step(absent, View{Rev: 5, Members: map[string]Member{
		"h0": {AdvSkew: 0, Healthy: false}, "h3": {AdvSkew: 200, Healthy: true},
		"h4": {AdvSkew: 10, Demotion: 240, Healthy: true},
	}})
	if len(find[Campaign](acts)) != 1 {
		t.Fatal("delayed by unhealthy or demoted members")
	}
}

func TestPreempt(t *testing.T) {
	better := View{Rev: 9, Leader: Leader{Present: true, Node: "h1", CreateRev: 42, Lease: 7},
		Members: map[string]Member{"h0": {AdvSkew: 0, Healthy: true}}}
	t.Run("off", func(t *testing.T) {
		m := newM(t, nil)
		won(t, m)
		m.Step(at(time.Second), better)
		if h := find[Hold](m.Step(at(5*time.Second), Tick{})); len(h) != 0 || !m.Holding() {
			t.Fatal("yielded without preempt")
		}
	})
	t.Run("on", func(t *testing.T) {
		m := newM(t, func(c *Config) { c.Preempt, c.PreemptDelay = true, time.Second })
		won(t, m)
		m.Step(at(time.Second), better)
		if !m.Holding() {
			t.Fatal("yielded before the preempt delay")
		}
		acts := m.Step(at(2*time.Second), Tick{})
		h, r := find[Hold](acts), find[Resign](acts)
		if len(h) != 1 || h[0].On || h[0].Reason != ReasonPreempted || len(r) != 1 || r[0].Tenure != 42 {
			t.Fatalf("want release then resign of 42: %v", acts)
		}
		if _, ok := acts[len(acts)-1].(Resign); !ok {
			t.Fatalf("resign before the release: %v", acts)
		}
		// The view still shows our key: not adopted again.
		if h := find[Hold](m.Step(at(2100*time.Millisecond), better)); len(h) != 0 || m.Holding() {
			t.Fatal("took the resigned key again")
		}
	})
}

func TestLostKeyAndLeaseGone(t *testing.T) {
	m := newM(t, nil)
	won(t, m)
	h := find[Hold](m.Step(at(time.Second), View{Rev: 9, Leader: Leader{Present: true, Node: "h2", CreateRev: 50, Lease: 8}}))
	if len(h) != 1 || h[0].On || h[0].Reason != ReasonLostKey {
		t.Fatalf("want release on a foreign leader key: %v", h)
	}
	m = newM(t, nil)
	won(t, m)
	acts := m.Step(at(2*time.Second), Tick{})
	acts = m.Step(at(2100*time.Millisecond), RenewFailed{ID: find[Renew](acts)[0].ID, Gone: true})
	if h := find[Hold](acts); len(h) != 1 || h[0].On || h[0].Reason != ReasonLeaseGone {
		t.Fatalf("want release when the lease is gone: %v", acts)
	}
	if len(find[Grant](acts)) != 1 {
		t.Fatalf("want a new grant: %v", acts)
	}
}

// TestAdoptLostAnswer: a Campaign whose answer was lost did write the key
// (the watch shows it under our lease): the node holds. A key of the same
// node name under another lease (a previous incarnation) is not ours.
func TestAdoptLostAnswer(t *testing.T) {
	m := newM(t, nil)
	leased(t, m)
	m.Step(at(100*time.Millisecond), View{Rev: 5})
	m.Step(at(200*time.Millisecond), Campaigned{Lease: 7, Err: errTest})
	h := find[Hold](m.Step(at(300*time.Millisecond), View{Rev: 6, Leader: Leader{Present: true, Node: "h1", CreateRev: 6, Lease: 7}}))
	if len(h) != 1 || !h[0].On || h[0].Tenure != 6 {
		t.Fatalf("want hold with tenure 6: %v", h)
	}
	m = newM(t, nil)
	leased(t, m)
	acts := m.Step(at(100*time.Millisecond), View{Rev: 5, Leader: Leader{Present: true, Node: "h1", CreateRev: 3, Lease: 6}})
	if len(find[Hold](acts)) != 0 || len(find[Campaign](acts)) != 0 {
		t.Fatalf("acted on a previous incarnation's key: %v", acts)
	}
}

func TestStop(t *testing.T) {
	m := newM(t, nil)
	won(t, m)
	acts := m.Step(at(time.Second), Stop{})
	want := []Action{Hold{On: false, Tenure: 42, Reason: ReasonStop}, Resign{Tenure: 42}, Revoke{ID: 7}}
	if !reflect.DeepEqual(acts, want) {
		t.Fatalf("stop: %v, want %v", acts, want)
	}
	if m.Step(at(2*time.Second), Tick{}) != nil || !m.NextDeadline().IsZero() {
		t.Fatal("acts after the stop")
	}
}

// TestNoCampaignWithoutLiveLease: past D (no acknowledged renewal) a node
// does not campaign, even with the key absent.
func TestNoCampaignWithoutLiveLease(t *testing.T) {
	m := newM(t, nil)
	leased(t, m)
	acts := m.Step(at(ttl), View{Rev: 5})
	if len(find[Campaign](acts)) != 0 {
		t.Fatalf("campaigned past D: %v", acts)
	}
}

func TestParseMember(t *testing.T) {
	good := []string{`{"advskew":0,"healthy":true}`, `{"advskew":254,"demotion":3,"healthy":false,"x":1}`}
	for _, s := range good {
		if _, err := ParseMember([]byte(s)); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	bad := []string{"", "garbage", `{"advskew":255,"healthy":true}`, `{"advskew":-1,"healthy":true}`,
		`{"healthy":true}`, `{"advskew":1}`, `{"advskew":"1","healthy":true}`, `[]`, `null`,
		`{"advskew":1,"demotion":-5,"healthy":true}`, `{"advskew":1e99,"healthy":true}`, "\xff\xfe"}
	for _, s := range bad {
		if _, err := ParseMember([]byte(s)); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// TestViewDropsGarbage: bad member keys are dropped and counted once per
// revision; a leader key with a bad value still counts as present.
func TestViewDropsGarbage(t *testing.T) {
	c := &Client{log: slog.New(slog.DiscardHandler), base: "/carpd/1/", leader: "/carpd/1/leader", dropped: map[string]int64{}}
	kvs := map[string]*mvccpb.KeyValue{
		"/carpd/1/leader":      {Key: []byte("/carpd/1/leader"), Value: []byte("\x00bad/"), CreateRevision: 4, ModRevision: 4},
		"/carpd/1/members/h1":  {Key: []byte("/carpd/1/members/h1"), Value: []byte(`{"advskew":1,"healthy":true}`), ModRevision: 2},
		"/carpd/1/members/h2":  {Key: []byte("/carpd/1/members/h2"), Value: []byte(`{{{`), ModRevision: 3},
		"/carpd/1/members/a b": {Key: []byte("/carpd/1/members/a b"), Value: []byte(`{"advskew":1,"healthy":true}`), ModRevision: 3},
		"/carpd/1/other":       {Key: []byte("/carpd/1/other"), Value: []byte(`x`), ModRevision: 3},
	}
	v := c.view(kvs, 5)
	if !v.Leader.Present || v.Leader.Node != "" || v.Leader.CreateRev != 4 {
		t.Fatalf("leader %+v", v.Leader)
	}
	if len(v.Members) != 1 || v.Members["h1"].AdvSkew != 1 {
		t.Fatalf("members %+v", v.Members)
	}
	if n := c.Stats.Dropped.Load(); n != 3 {
		t.Fatalf("dropped %d, want 3", n)
	}
	c.view(kvs, 6)
	if n := c.Stats.Dropped.Load(); n != 3 {
		t.Fatalf("dropped %d after a second view of the same keys, want 3", n)
	}
	// A machine seeing that view waits: the key is present.
	m := newM(t, nil)
	leased(t, m)
	if acts := m.Step(at(time.Second), v); len(find[Campaign](acts)) != 0 {
		t.Fatal("campaigned against a present (garbage) leader key")
	}
}

// TestRenewRetriedSoonAfterFailure: a renewal that failed (no leader, a
// timeout) is tried again after Renew/RenewRetryDiv, not a whole Renew
// later; one that succeeds goes back to the Renew period.
func TestRenewRetriedSoonAfterFailure(t *testing.T) {
	m := newM(t, nil)
	won(t, m)
	var sent time.Time
	for now := at(0); now.Before(at(3 * time.Second)); now = now.Add(10 * time.Millisecond) {
		if rs := find[Renew](m.Step(now, Tick{})); len(rs) == 1 {
			sent = now
			break
		}
	}
	if sent.IsZero() {
		t.Fatal("no renewal in 3 s")
	}
	failed := sent.Add(5 * time.Millisecond)
	m.Step(failed, RenewFailed{ID: 7, Err: errTest})
	retry := failed.Add(renew / RenewRetryDiv)
	if got := find[Renew](m.Step(retry.Add(-time.Millisecond), Tick{})); len(got) != 0 {
		t.Fatalf("renewal tried again %v after a failure, want %v", renew/RenewRetryDiv-time.Millisecond, renew/RenewRetryDiv)
	}
	if got := find[Renew](m.Step(retry, Tick{})); len(got) != 1 {
		t.Fatalf("no renewal %v after a failed one", renew/RenewRetryDiv)
	}
	m.Step(retry.Add(time.Millisecond), Renewed{ID: 7, TTL: ttl, Sent: retry})
	if got := find[Renew](m.Step(retry.Add(renew-time.Millisecond), Tick{})); len(got) != 0 {
		t.Fatal("renewed sooner than Renew after a success")
	}
	if got := find[Renew](m.Step(retry.Add(renew), Tick{})); len(got) != 1 {
		t.Fatal("no renewal Renew after a success")
	}
}

// TestUnhealthyYields: an unhealthy holder (its link down, released by a
// check) yields to a healthy member at once, with preempt off and a
// worse advskew on the other side: the release comes before the guarded
// delete. With no healthy member it keeps holding; it does not campaign
// while a healthy member is seen, and does once none is.
func TestUnhealthyYields(t *testing.T) {
	worse := View{Rev: 9, Leader: Leader{Present: true, Node: "h1", CreateRev: 42, Lease: 7},
		Members: map[string]Member{"h2": {AdvSkew: 200, Healthy: true}}}
	sick := View{Rev: 9, Leader: worse.Leader, Members: map[string]Member{"h2": {AdvSkew: 200, Healthy: false}}}

	m := newM(t, nil)
	won(t, m)
	m.Step(at(time.Second), sick)
	acts := m.Step(at(1100*time.Millisecond), SetHealth{Healthy: false})
	if len(find[Hold](acts)) != 0 || !m.Holding() {
		t.Fatalf("yielded with no healthy member: %v", acts)
	}
	acts = m.Step(at(1200*time.Millisecond), worse)
	h, r := find[Hold](acts), find[Resign](acts)
	if len(h) != 1 || h[0].On || h[0].Reason != ReasonUnhealthy || len(r) != 1 || r[0].Tenure != 42 {
		t.Fatalf("want release then resign of 42: %v", acts)
	}
	if _, ok := acts[len(acts)-1].(Resign); !ok {
		t.Fatalf("resign before the release: %v", acts)
	}
	m.Step(at(1300*time.Millisecond), Resigned{})
	// The key is gone: the healthy member takes it, not this one.
	absent := View{Rev: 10, Members: worse.Members}
	if c := find[Campaign](m.Step(at(1400*time.Millisecond), absent)); len(c) != 0 {
		t.Fatal("an unhealthy node campaigned with a healthy member seen")
	}
	if c := find[Campaign](m.Step(at(5*time.Second), Tick{})); len(c) != 0 {
		t.Fatal("an unhealthy node campaigned later with a healthy member seen")
	}
	// The healthy member is gone: the unhealthy node is better than none.
	if c := find[Campaign](m.Step(at(5100*time.Millisecond), View{Rev: 11, Members: map[string]Member{}})); len(c) != 1 {
		t.Fatal("no campaign with no other member")
	}

	// Healthy again, a worse holder with preempt yields back to it.
	h2 := newM(t, func(c *Config) { c.Node, c.AdvSkew, c.Preempt = "h2", 200, true })
	won(t, h2)
	h2.Step(at(time.Second), View{Rev: 12, Leader: Leader{Present: true, Node: "h2", CreateRev: 42, Lease: 7},
		Members: map[string]Member{"h1": {AdvSkew: 100, Healthy: false}}})
	if !h2.Holding() {
		t.Fatal("yielded to an unhealthy member")
	}
	acts = h2.Step(at(2*time.Second), View{Rev: 13, Leader: Leader{Present: true, Node: "h2", CreateRev: 42, Lease: 7},
		Members: map[string]Member{"h1": {AdvSkew: 100, Healthy: true}}})
	if h := find[Hold](acts); len(h) != 1 || h[0].On || h[0].Reason != ReasonPreempted {
		t.Fatalf("want the preempt once the better member is healthy: %v", acts)
	}
}

// TestReconfigureRanking: a reload's new advskew is published at once;
// turning preempt on makes a worse holder yield; no restart.
func TestReconfigureRanking(t *testing.T) {
	m := newM(t, nil)
	won(t, m)
	better := View{Rev: 9, Leader: Leader{Present: true, Node: "h1", CreateRev: 42, Lease: 7},
		Members: map[string]Member{"h0": {AdvSkew: 150, Healthy: true}}}
	m.Step(at(time.Second), better)
	acts := m.Step(at(1100*time.Millisecond), Reconfigure{AdvSkew: 200})
	p := find[PutMember](acts)
	if len(p) != 1 || p[0].Member.AdvSkew != 200 || p[0].ID != 7 || m.AdvSkew() != 200 {
		t.Fatalf("want the new advskew published: %v", acts)
	}
	m.Step(at(1200*time.Millisecond), MemberPut{})
	if h := find[Hold](m.Step(at(3*time.Second), Tick{})); len(h) != 0 || !m.Holding() {
		t.Fatal("yielded without preempt")
	}
	acts = m.Step(at(3100*time.Millisecond), Reconfigure{AdvSkew: 200, Preempt: true, PreemptDelay: time.Second})
	if len(find[PutMember](acts)) != 0 || len(find[Hold](acts)) != 0 {
		t.Fatalf("acted before the preempt delay: %v", acts)
	}
	if got, want := m.NextDeadline(), at(4100*time.Millisecond); got.After(want) {
		t.Fatalf("next deadline %v, want by %v", got.Sub(t0), want.Sub(t0))
	}
	acts = m.Step(at(4100*time.Millisecond), Tick{})
	if h, r := find[Hold](acts), find[Resign](acts); len(h) != 1 || h[0].On || h[0].Reason != ReasonPreempted || len(r) != 1 {
		t.Fatalf("want the yield after the delay: %v", acts)
	}
}
