// Command login-gen is the login load generator of bench/ in Go (standard library only),
// driven by bench/lib/gogen.ts: the same login sequence as login() in bench/lib/xmpp.ts,
// at a fraction of the client's CPU cost (a crypto/tls client handshake costs about half
// of a Node one), so that the generator is not what limits a login benchmark.
//
// One login is: connect → stream header → [STARTTLS → TLS handshake (full, no resumption,
// certificate not verified) → header] → SASL SCRAM-SHA-1/-256 (server signature verified)
// → stream restart → bind (a unique resource) [→ session, only where the server says it is
// not optional] → roster get → initial presence → ping (XEP-0199) to the server and its
// result. The server's replies are read by string scanning (as StanzaReader does): either
// quote, any prefix on stream-level elements, whitespace between elements, stanzas not
// asked for skipped.
//
// Protocol: commands on stdin, one per line; JSON lines on stdout; diagnostics on stderr.
//
//	run N PHASE OFFSET  N logins of accounts OFFSET … OFFSET+N-1 (<user-prefix><i>, resource
//	                    PHASE<i>), -concurrency in flight; no new login after the first
//	                    failure. The sessions stay open (read and discarded). Prints, at
//	                    most every 500 ms, {"type":"progress","done","errors",
//	                    "new_latencies_ms" (since the last line),"cpu_user_ms","cpu_sys_ms"},
//	                    then {"type":"run","phase","done","errors","first_error",
//	                    "error_samples" (the first 10),"seconds","latencies_ms" (whole login
//	                    sequences, in completion order),"cpu_user_ms","cpu_sys_ms" (getrusage
//	                    totals at the end),"pbkdf2" (derivations in this run),"iterations",
//	                    "open" (sessions open now)}.
//	close               closes every open session (</stream:stream>, at most 10 s in all);
//	                    prints {"type":"closed","count"}
//	cpu                 prints {"type":"cpu","cpu_user_ms","cpu_sys_ms"} (getrusage totals)
//	EOF                 closes every session and exits 0
//
// It runs on one core, like the Node generator: GOMAXPROCS=1 unless the environment says
// otherwise.
package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"math"
	"net"
	"os"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	nsStream  = "http://etherx.jabber.org/streams"
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession = "urn:ietf:params:xml:ns:xmpp-session"
)

var (
	addr        string
	domain      string
	useTLS      bool
	mechanism   string
	userPrefix  string
	password    []byte
	concurrency int
	timeout     time.Duration

	header    []byte
	tlsConfig *tls.Config
	newHash   func() hash.Hash
)

func main() {
	host := flag.String("host", "127.0.0.1", "server host")
	port := flag.Int("port", 5222, "client port (STARTTLS, or plain with -tls=false)")
	flag.StringVar(&domain, "domain", "localhost", "XMPP domain")
	flag.BoolVar(&useTLS, "tls", true, "STARTTLS before authenticating")
	flag.StringVar(&mechanism, "mechanism", "SCRAM-SHA-1", "SCRAM-SHA-1 or SCRAM-SHA-256")
	flag.StringVar(&userPrefix, "user-prefix", "bench", "account i is <user-prefix><i>")
	pw := flag.String("password", "bench-password", "the password of every account")
	flag.IntVar(&concurrency, "concurrency", 20, "logins in flight")
	flag.DurationVar(&timeout, "timeout", 30*time.Second, "time limit of one login")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile (runtime/pprof) to this file, until stdin ends")
	flag.Parse()
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fatal("-cpuprofile: %v", err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	switch mechanism {
	case "SCRAM-SHA-1":
		newHash = sha1.New
	case "SCRAM-SHA-256":
		newHash = sha256.New
	default:
		fatal("-mechanism: expected SCRAM-SHA-1 or SCRAM-SHA-256, got %q", mechanism)
	}
	if concurrency < 1 {
		fatal("-concurrency: at least 1")
	}
	addr = net.JoinHostPort(*host, strconv.Itoa(*port))
	password = []byte(*pw)
	header = []byte("<?xml version='1.0'?><stream:stream to='" + domain + "' xmlns='jabber:client' xmlns:stream='" + nsStream + "' version='1.0'>")
	// Full handshakes only: no ClientSessionCache, so no session ticket is kept or offered.
	tlsConfig = &tls.Config{InsecureSkipVerify: true, ServerName: domain}

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "run" && len(f) == 4:
			n, err1 := strconv.Atoi(f[1])
			offset, err2 := strconv.Atoi(f[3])
			if err1 != nil || err2 != nil || n < 0 || offset < 0 {
				logf("bad command: %q", in.Text())
				continue
			}
			run(n, f[2], offset)
		case f[0] == "close":
			n := closeAll(10 * time.Second)
			emit(map[string]any{"type": "closed", "count": n})
		case f[0] == "cpu":
			u, s := cpuMs()
			emit(map[string]any{"type": "cpu", "cpu_user_ms": u, "cpu_sys_ms": s})
		default:
			logf("unknown command: %q", in.Text())
		}
	}
	closeAll(10 * time.Second)
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

var outMu sync.Mutex

func emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fatal("json: %v", err)
	}
	outMu.Lock()
	os.Stdout.Write(append(b, '\n'))
	outMu.Unlock()
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "login-gen: "+format+"\n", args...)
}

func fatal(format string, args ...any) {
	logf(format, args...)
	os.Exit(2)
}

// cpuMs is this process's CPU time so far (user, system; ms).
func cpuMs() (float64, float64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN(), math.NaN()
	}
	ms := func(t syscall.Timeval) float64 { return float64(t.Sec)*1e3 + float64(t.Usec)/1e3 }
	return ms(ru.Utime), ms(ru.Stime)
}

// ---------------------------------------------------------------------------
// Runs and open sessions
// ---------------------------------------------------------------------------

type session struct {
	raw  *net.TCPConn
	conn net.Conn // raw, or the TLS connection over it
	done chan struct{}
}

var (
	sessMu   sync.Mutex
	sessions []*session
)

// drain reads and drops whatever the server sends the session until it is closed.
func (s *session) drain() {
	buf := make([]byte, 512)
	for {
		if _, err := s.conn.Read(buf); err != nil {
			break
		}
	}
	close(s.done)
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func run(n int, phase string, offset int) {
	var (
		mu        sync.Mutex
		latencies = make([]float64, 0, n)
		reported  = 0
		errs      []string
		errCount  int
		next      int64 = -1
		stop      int32
		pbkdfRuns = atomic.LoadInt64(&pbkdf2Runs)
		wg        sync.WaitGroup
	)
	t0 := time.Now()
	worker := func() {
		defer wg.Done()
		for atomic.LoadInt32(&stop) == 0 {
			i := int(atomic.AddInt64(&next, 1))
			if i >= n {
				return
			}
			k := offset + i
			user := userPrefix + strconv.Itoa(k)
			resource := phase + strconv.Itoa(k)
			start := time.Now()
			s, err := login(user, resource)
			ms := float64(time.Since(start).Nanoseconds()) / 1e6
			mu.Lock()
			if err != nil {
				errCount++
				if len(errs) < 10 {
					errs = append(errs, user+"/"+resource+": "+err.Error())
				}
				// After the first failure no new login starts (a broken setup fails them all).
				atomic.StoreInt32(&stop, 1)
			} else {
				latencies = append(latencies, round3(ms))
			}
			mu.Unlock()
			if s != nil {
				sessMu.Lock()
				sessions = append(sessions, s)
				sessMu.Unlock()
				go s.drain()
			}
		}
	}
	k := concurrency
	if k > n {
		k = n
	}
	wg.Add(k)
	for w := 0; w < k; w++ {
		go worker()
	}
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	progress := func() {
		u, s := cpuMs()
		mu.Lock()
		fresh := append([]float64(nil), latencies[reported:]...)
		reported = len(latencies)
		line := map[string]any{"type": "progress", "done": len(latencies), "errors": errCount, "new_latencies_ms": fresh, "cpu_user_ms": u, "cpu_sys_ms": s}
		mu.Unlock()
		emit(line)
	}
loop:
	for {
		select {
		case <-finished:
			break loop
		case <-tick.C:
			progress()
		}
	}
	seconds := time.Since(t0).Seconds()
	u, s := cpuMs()
	var first any
	if len(errs) > 0 {
		first = errs[0]
	}
	if errs == nil {
		errs = []string{}
	}
	emit(map[string]any{
		"type": "run", "phase": phase, "done": len(latencies), "errors": errCount, "first_error": first, "error_samples": errs,
		"seconds": seconds, "latencies_ms": latencies, "cpu_user_ms": u, "cpu_sys_ms": s,
		"pbkdf2": atomic.LoadInt64(&pbkdf2Runs) - pbkdfRuns, "iterations": atomic.LoadInt64(&lastIterations),
		"open": openCount(),
	})
}

func openCount() int {
	sessMu.Lock()
	defer sessMu.Unlock()
	return len(sessions)
}

// closeAll ends every open session: `</stream:stream>` and a half-close (as the Node
// generator's socket.end()), then waits for the server to close each one, at most `limit`
// in all; whatever is still open then is closed.
func closeAll(limit time.Duration) int {
	sessMu.Lock()
	list := sessions
	sessions = nil
	sessMu.Unlock()
	deadline := time.Now().Add(limit)
	end := []byte("</stream:stream>")
	for _, s := range list {
		s.conn.SetWriteDeadline(deadline)
		if _, err := s.conn.Write(end); err == nil {
			if t, ok := s.conn.(*tls.Conn); ok {
				t.CloseWrite()
			}
			s.raw.CloseWrite()
		}
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
wait:
	for _, s := range list {
		select {
		case <-s.done:
		case <-timer.C:
			break wait
		}
	}
	for _, s := range list {
		s.conn.Close()
	}
	return len(list)
}

// ---------------------------------------------------------------------------
// Scanning (the StanzaReader of bench/lib/xmpp.ts)
// ---------------------------------------------------------------------------

// reader splits an XMPP stream into its top-level elements: tracks element depth by tags;
// skips the XML declaration, processing instructions, comments and stream headers (any
// prefix); returns a lone stream end tag as an element of its own. Assumes what every
// server sends: no `>` unescaped inside attribute values.
type reader struct {
	r                 io.Reader
	buf               []byte
	pos, depth, start int
}

var errClosed = errors.New("connection closed by the server")

func (r *reader) reset(src io.Reader) {
	r.r = src
	r.buf = r.buf[:0]
	r.pos, r.depth, r.start = 0, 0, 0
}

// fill reads more input, keeping the element in progress.
func (r *reader) fill() error {
	keep := r.pos
	if r.depth > 0 {
		keep = r.start
	}
	if keep > 0 {
		n := copy(r.buf, r.buf[keep:])
		r.buf = r.buf[:n]
		r.pos -= keep
		r.start = 0
	}
	if len(r.buf) == cap(r.buf) {
		nb := make([]byte, len(r.buf), 2*cap(r.buf)+4096)
		copy(nb, r.buf)
		r.buf = nb
	}
	n, err := r.r.Read(r.buf[len(r.buf):cap(r.buf)])
	r.buf = r.buf[:len(r.buf)+n]
	if n > 0 {
		return nil
	}
	if err == nil || err == io.EOF {
		return errClosed
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("no answer within %v", timeout)
	}
	return fmt.Errorf("socket: %v", err)
}

// scan returns the next complete top-level element, or false until more input arrives.
func (r *reader) scan() (string, bool) {
	buf := r.buf
	for {
		lt := bytes.IndexByte(buf[r.pos:], '<')
		if lt < 0 {
			if r.depth == 0 {
				r.pos = len(buf)
			}
			return "", false
		}
		lt += r.pos
		if lt+1 >= len(buf) {
			r.pos = lt
			return "", false
		}
		c := buf[lt+1]
		if c == '!' {
			// A comment or CDATA section.
			if len(buf)-lt < 9 && bytes.HasPrefix([]byte("<![CDATA["), buf[lt:]) {
				r.pos = lt
				return "", false
			}
			end := []byte("-->")
			if bytes.HasPrefix(buf[lt:], []byte("<![CDATA[")) {
				end = []byte("]]>")
			}
			e := bytes.Index(buf[lt+2:], end)
			if e < 0 {
				r.pos = lt
				return "", false
			}
			r.pos = lt + 2 + e + len(end)
			continue
		}
		gt := bytes.IndexByte(buf[lt:], '>')
		if gt < 0 {
			r.pos = lt
			return "", false
		}
		gt += lt
		r.pos = gt + 1
		if c == '?' {
			continue
		}
		if c == '/' {
			if r.depth == 0 {
				return string(buf[lt : gt+1]), true
			}
			r.depth--
			if r.depth == 0 {
				return string(buf[r.start : gt+1]), true
			}
			continue
		}
		selfClosing := buf[gt-1] == '/'
		if r.depth == 0 {
			if selfClosing {
				return string(buf[lt : gt+1]), true
			}
			name := tagName(buf[lt:])
			if bytes.Equal(name, []byte("stream")) || bytes.HasSuffix(name, []byte(":stream")) {
				continue
			}
			r.start = lt
			r.depth = 1
			continue
		}
		if !selfClosing {
			r.depth++
		}
	}
}

// next is the next top-level element; a stream end or a stream error is an error.
func (r *reader) next() (string, error) {
	for {
		if el, ok := r.scan(); ok {
			if strings.HasPrefix(el, "</") {
				return "", fmt.Errorf("the server ended the stream: %s", el)
			}
			if strings.HasPrefix(el, "<stream:") && localName(el) == "error" {
				return "", fmt.Errorf("stream error %s", describeError(el))
			}
			return el, nil
		}
		if err := r.fill(); err != nil {
			return "", err
		}
	}
}

// expect is the next element named `name` (local name); others that a server may send
// first (presence, message) are skipped.
func (r *reader) expect(name string) (string, error) {
	for {
		el, err := r.next()
		if err != nil {
			return "", err
		}
		switch n := localName(el); n {
		case name:
			return el, nil
		case "failure":
			return "", fmt.Errorf("SASL failure %s", describeError(el))
		case "presence", "message", "open", "iq":
			continue
		default:
			return "", fmt.Errorf("expected <%s>, got %s", name, clip(el))
		}
	}
}

// iq is the answer to the iq with this id (anything else skipped); an error answer is an error.
func (r *reader) iq(id, what string) (string, error) {
	for {
		el, err := r.next()
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(el, "<iq") || attr(el, "id") != id {
			if n := localName(el); n == "features" || n == "failure" {
				return "", fmt.Errorf("expected the %s answer, got %s", what, clip(el))
			}
			continue
		}
		if attr(el, "type") != "result" {
			return "", fmt.Errorf("%s: %s", what, describeError(el))
		}
		return el, nil
	}
}

// tagName is the qualified name of the tag that b starts with (`<name …`).
func tagName(b []byte) []byte {
	e := 1
	for e < len(b) {
		switch b[e] {
		case ' ', '>', '/', '\t', '\n', '\r':
			return b[1:e]
		}
		e++
	}
	return b[1:e]
}

// localName is the local name of an element (`stream:features` → `features`).
func localName(el string) string {
	q := string(tagName([]byte(el[strings.IndexByte(el, '<'):])))
	return q[strings.IndexByte(q, ':')+1:]
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// attr is the value of attribute `name` in the start tag of `el` (either quote; entities
// left as they are), or "".
func attr(el, name string) string {
	end := strings.IndexByte(el, '>')
	if end < 0 {
		end = len(el)
	}
	tag := el[:end]
	for i := 0; ; {
		j := strings.Index(tag[i:], name)
		if j < 0 {
			return ""
		}
		j += i
		i = j + len(name)
		if j == 0 || !isSpace(tag[j-1]) {
			continue
		}
		k := i
		for k < len(tag) && isSpace(tag[k]) {
			k++
		}
		if k >= len(tag) || tag[k] != '=' {
			continue
		}
		k++
		for k < len(tag) && isSpace(tag[k]) {
			k++
		}
		if k >= len(tag) || (tag[k] != '\'' && tag[k] != '"') {
			continue
		}
		v := strings.IndexByte(tag[k+1:], tag[k])
		if v < 0 {
			return ""
		}
		return tag[k+1 : k+1+v]
	}
}

// inner is the character data of the first `<name …>data</name>` in el ("" when empty or absent).
func inner(el, name string) string {
	open := strings.Index(el, "<"+name)
	if open < 0 {
		return ""
	}
	gt := strings.IndexByte(el[open:], '>')
	if gt < 0 {
		return ""
	}
	gt += open
	if el[gt-1] == '/' {
		return ""
	}
	end := strings.Index(el[gt:], "</"+name+">")
	if end < 0 {
		return ""
	}
	return el[gt+1 : gt+end]
}

var (
	reCondition = []*regexp.Regexp{
		regexp.MustCompile(`<error[^>]*>\s*<([a-z-]+)`),
		regexp.MustCompile(`<failure[^>]*>\s*<([a-z-]+)`),
		regexp.MustCompile(`<stream:error[^>]*>\s*<([a-z-]+)`),
	}
	reText = regexp.MustCompile(`<text[^>]*>([^<]*)</text>`)
)

// describeError is the defined condition and text of an error element, for messages.
func describeError(el string) string {
	cond := "error"
	for _, re := range reCondition {
		if m := re.FindStringSubmatch(el); m != nil {
			cond = m[1]
			break
		}
	}
	if m := reText.FindStringSubmatch(el); m != nil {
		cond += " (" + m[1] + ")"
	}
	return cond + ": " + clip(el)
}

func clip(s string) string {
	if len(s) > 400 {
		return s[:400]
	}
	return s
}

// sessionRequired tells whether the features ask for RFC 3921 session establishment
// (a <session/> of the session namespace without <optional/>).
func sessionRequired(features string) bool {
	for i := 0; ; {
		j := strings.Index(features[i:], "<session")
		if j < 0 {
			return false
		}
		j += i
		i = j + 8
		if i < len(features) && !isSpace(features[i]) && features[i] != '>' && features[i] != '/' {
			continue
		}
		gt := strings.IndexByte(features[j:], '>')
		if gt < 0 {
			return false
		}
		gt += j
		if !strings.Contains(features[j:gt], nsSession) {
			continue
		}
		if features[gt-1] == '/' {
			return true
		}
		end := strings.Index(features[gt:], "</session>")
		if end < 0 {
			continue
		}
		return !strings.Contains(features[gt:gt+end], "<optional")
	}
}

// ---------------------------------------------------------------------------
// SCRAM (RFC 5802, RFC 7677): no channel binding, ASCII account names
// ---------------------------------------------------------------------------

type scramKeys struct{ clientKey, storedKey, serverKey []byte }

var (
	keyMu    sync.Mutex
	keyCache = map[string]*scramKeys{}
	// PBKDF2 derivations run so far (cache misses), and the last iteration count seen.
	pbkdf2Runs     int64
	lastIterations int64
)

func hmacSum(key []byte, parts ...string) []byte {
	m := hmac.New(newHash, key)
	for _, p := range parts {
		io.WriteString(m, p)
	}
	return m.Sum(nil)
}

// hi is PBKDF2 with HMAC and one output block (RFC 5802 Hi()).
func hi(salt []byte, iterations int) []byte {
	m := hmac.New(newHash, password)
	m.Write(salt)
	m.Write([]byte{0, 0, 0, 1})
	u := m.Sum(nil)
	out := append([]byte(nil), u...)
	for i := 1; i < iterations; i++ {
		m.Reset()
		m.Write(u)
		u = m.Sum(u[:0])
		for j := range out {
			out[j] ^= u[j]
		}
	}
	return out
}

// keys derives the SCRAM keys of the one password for (salt, iterations), once per process.
func keys(salt string, iterations int) (*scramKeys, error) {
	ck := strconv.Itoa(iterations) + " " + salt
	keyMu.Lock()
	k := keyCache[ck]
	keyMu.Unlock()
	if k != nil {
		return k, nil
	}
	rawSalt, err := base64.StdEncoding.DecodeString(salt)
	if err != nil {
		return nil, fmt.Errorf("SCRAM: bad salt %q", salt)
	}
	atomic.AddInt64(&pbkdf2Runs, 1)
	salted := hi(rawSalt, iterations)
	clientKey := hmacSum(salted, "Client Key")
	h := newHash()
	h.Write(clientKey)
	k = &scramKeys{clientKey: clientKey, storedKey: h.Sum(nil), serverKey: hmacSum(salted, "Server Key")}
	keyMu.Lock()
	keyCache[ck] = k
	keyMu.Unlock()
	return k, nil
}

type scram struct {
	clientFirstBare string
	nonce           string
	serverSignature []byte
}

func newScram(user string) *scram {
	var r [18]byte
	if _, err := rand.Read(r[:]); err != nil {
		fatal("random: %v", err)
	}
	nonce := base64.StdEncoding.EncodeToString(r[:])
	return &scram{clientFirstBare: "n=" + user + ",r=" + nonce, nonce: nonce}
}

// first is client-first-message, base64.
func (s *scram) first() string {
	return base64.StdEncoding.EncodeToString([]byte("n,," + s.clientFirstBare))
}

// final is client-final-message, base64, from server-first-message (base64).
func (s *scram) final(serverFirstB64 string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(serverFirstB64))
	if err != nil {
		return "", fmt.Errorf("SCRAM: bad base64 in the challenge %q", clip(serverFirstB64))
	}
	serverFirst := string(raw)
	var nonce, salt string
	iterations := 0
	for _, part := range strings.Split(serverFirst, ",") {
		switch {
		case strings.HasPrefix(part, "r="):
			nonce = part[2:]
		case strings.HasPrefix(part, "s="):
			salt = part[2:]
		case strings.HasPrefix(part, "i="):
			iterations, _ = strconv.Atoi(part[2:])
		case strings.HasPrefix(part, "m="):
			return "", fmt.Errorf("SCRAM: unsupported mandatory extension in '%s'", serverFirst)
		}
	}
	if !strings.HasPrefix(nonce, s.nonce) || len(nonce) == len(s.nonce) || salt == "" || iterations <= 0 || iterations > 1_000_000 {
		return "", fmt.Errorf("SCRAM: bad server-first-message '%s'", serverFirst)
	}
	atomic.StoreInt64(&lastIterations, int64(iterations))
	k, err := keys(salt, iterations)
	if err != nil {
		return "", err
	}
	withoutProof := "c=biws,r=" + nonce
	signature := hmacSum(k.storedKey, s.clientFirstBare, ",", serverFirst, ",", withoutProof)
	for i := range signature {
		signature[i] ^= k.clientKey[i]
	}
	s.serverSignature = hmacSum(k.serverKey, s.clientFirstBare, ",", serverFirst, ",", withoutProof)
	return base64.StdEncoding.EncodeToString([]byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(signature))), nil
}

// verify checks server-final-message (base64 `v=…`).
func (s *scram) verify(serverFinalB64 string) error {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(serverFinalB64))
	text := string(raw)
	if err != nil || s.serverSignature == nil || !strings.HasPrefix(text, "v=") {
		return fmt.Errorf("SCRAM: bad server-final-message '%s'", clip(text))
	}
	sig, err := base64.StdEncoding.DecodeString(text[2:])
	if err != nil || !hmac.Equal(sig, s.serverSignature) {
		return errors.New("SCRAM: server signature mismatch")
	}
	return nil
}

// ---------------------------------------------------------------------------
// One login
// ---------------------------------------------------------------------------

func write(c net.Conn, s string) error {
	if _, err := io.WriteString(c, s); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("no answer within %v", timeout)
		}
		return fmt.Errorf("socket: %v", err)
	}
	return nil
}

func offers(features, m string) bool { return strings.Contains(features, ">"+m+"<") }

// login runs one whole login on a new connection (see the file comment) and returns the
// bound session, or the first failure.
func login(user, resource string) (*session, error) {
	// The time limit covers the whole login, the connect included.
	deadline := time.Now().Add(timeout)
	// No TCP keepalive (three setsockopt calls per connection, and probes nobody needs).
	dialer := net.Dialer{Deadline: deadline, KeepAlive: -1}
	conn, err := dialer.Dial("tcp", addr)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("no answer within %v", timeout)
		}
		return nil, fmt.Errorf("socket: %v", err)
	}
	raw := conn.(*net.TCPConn)
	// Go turns Nagle's algorithm off on every TCP connection already; said here for the reader.
	raw.SetNoDelay(true)
	raw.SetDeadline(deadline)
	s, err := loginOn(raw, user, resource)
	if err != nil {
		conn.Close()
		return nil, err
	}
	s.conn.SetDeadline(time.Time{})
	return s, nil
}

func loginOn(raw *net.TCPConn, user, resource string) (*session, error) {
	var c net.Conn = raw
	r := &reader{r: raw, buf: make([]byte, 0, 4096)}
	if _, err := c.Write(header); err != nil {
		return nil, fmt.Errorf("socket: %v", err)
	}
	features, err := r.expect("features")
	if err != nil {
		return nil, err
	}
	if useTLS {
		if !strings.Contains(features, "<starttls") {
			return nil, fmt.Errorf("no STARTTLS offered: %s", clip(features))
		}
		if err := write(c, "<starttls xmlns='"+nsTLS+"'/>"); err != nil {
			return nil, err
		}
		if _, err := r.expect("proceed"); err != nil {
			return nil, err
		}
		t := tls.Client(raw, tlsConfig)
		if err := t.Handshake(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, fmt.Errorf("no answer within %v", timeout)
			}
			return nil, fmt.Errorf("socket: %v", err)
		}
		c = t
		// The plain stream's reader is done.
		r.reset(t)
		if _, err := c.Write(header); err != nil {
			return nil, fmt.Errorf("socket: %v", err)
		}
		if features, err = r.expect("features"); err != nil {
			return nil, err
		}
	}
	if !strings.Contains(features, nsSASL) {
		extra := ""
		if !useTLS {
			extra = " on a plain stream (does the server require STARTTLS?)"
		}
		return nil, fmt.Errorf("no SASL mechanisms offered%s: %s", extra, clip(features))
	}
	if !offers(features, mechanism) {
		return nil, fmt.Errorf("%s not offered: %s", mechanism, clip(features))
	}
	sc := newScram(user)
	if err := write(c, "<auth xmlns='"+nsSASL+"' mechanism='"+mechanism+"'>"+sc.first()+"</auth>"); err != nil {
		return nil, err
	}
	challenge, err := r.expect("challenge")
	if err != nil {
		return nil, err
	}
	final, err := sc.final(inner(challenge, "challenge"))
	if err != nil {
		return nil, err
	}
	if err := write(c, "<response xmlns='"+nsSASL+"'>"+final+"</response>"); err != nil {
		return nil, err
	}
	success, err := r.next()
	if err != nil {
		return nil, err
	}
	switch localName(success) {
	case "challenge":
		// Some servers send server-final-message as a challenge and an empty <success/>
		// after it (RFC 6120 §6.3.10).
		if err := sc.verify(inner(success, "challenge")); err != nil {
			return nil, err
		}
		if err := write(c, "<response xmlns='"+nsSASL+"'/>"); err != nil {
			return nil, err
		}
		if _, err := r.expect("success"); err != nil {
			return nil, err
		}
	case "success":
		if err := sc.verify(inner(success, "success")); err != nil {
			return nil, err
		}
	case "failure":
		return nil, fmt.Errorf("SASL failure %s", describeError(success))
	default:
		return nil, fmt.Errorf("expected <success>, got %s", clip(success))
	}
	// RFC 6120 §6.4.6: restart the stream.
	if _, err := c.Write(header); err != nil {
		return nil, fmt.Errorf("socket: %v", err)
	}
	if features, err = r.expect("features"); err != nil {
		return nil, err
	}
	if !strings.Contains(features, nsBind) {
		return nil, fmt.Errorf("no bind feature: %s", clip(features))
	}
	if err := write(c, "<iq type='set' id='b'><bind xmlns='"+nsBind+"'><resource>"+resource+"</resource></bind></iq>"); err != nil {
		return nil, err
	}
	bound, err := r.iq("b", "bind")
	if err != nil {
		return nil, err
	}
	if inner(bound, "jid") == "" {
		return nil, errors.New("bind: no JID in the result")
	}
	// RFC 3921 session establishment, only where a server still requires it (RFC 6121 dropped it).
	if sessionRequired(features) {
		if err := write(c, "<iq type='set' id='s'><session xmlns='"+nsSession+"'/></iq>"); err != nil {
			return nil, err
		}
		if _, err := r.iq("s", "session"); err != nil {
			return nil, err
		}
	}
	if err := write(c, "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>"); err != nil {
		return nil, err
	}
	if _, err := r.iq("r", "roster get"); err != nil {
		return nil, err
	}
	if err := write(c, "<presence/><iq type='get' id='p' to='"+domain+"'><ping xmlns='urn:xmpp:ping'/></iq>"); err != nil {
		return nil, err
	}
	if _, err := r.iq("p", "ping"); err != nil {
		return nil, err
	}
	return &session{raw: raw, conn: c, done: make(chan struct{})}, nil
}
