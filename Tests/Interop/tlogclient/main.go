// tlogclient checks a Stele log the way an outsider would, with code that is not Stele's:
// Go's own transparency-log packages (golang.org/x/mod/sumdb/note and sumdb/tlog, which the
// go command uses to check the Go checksum database), Go's crypto/ed25519, and the C2SP specs
// for what x/mod does not know (the checkpoint body, tlog-tiles paths and entry bundles,
// cosignature/v1, tlog-witness add-checkpoint).
//
// It is built and run by Tests/SteleTests/InteropTests.swift (GOPATH mode, Debian's
// golang-go and golang-golang-x-mod-dev; no network). Subcommands:
//
//	check   -log URL -key VKEY [-witness-key VKEY ... -quorum N] [-old FILE] [-save FILE]
//	        the log's signature, N cosignatures, the root from the served tiles (x/mod checks
//	        every tile it reads against the checkpoint), every entry bundle against the leaf
//	        hashes, inclusion proofs, and a consistency proof from the checkpoint in FILE.
//	witness -log URL -key VKEY -witness URL -witness-key VKEY -old N
//	        asks the witness to cosign the served checkpoint with a consistency proof from
//	        size N, after requests it must refuse (400, 403, 404, 409, 422); verifies the
//	        cosignature it returns.
//	proofs  -log URL -key VKEY -inclusion FILE [-consistency FILE -old FILE]
//	        checks proofs that Stele made (`stele prove --json`) with x/mod's CheckRecord and
//	        CheckTree against the served checkpoint (and the old one), and that each fails
//	        once a byte of it is changed.
//	load    -log URL -key VKEY -requests N -concurrency C -slow S
//	        N requests from C connections at once (tiles, bundles, paths past the tree,
//	        malformed paths) while S clients hold connections open with half-sent requests;
//	        every answer must be the expected one, byte for byte.
//
// Exit status 0 when every check held, 1 with the reason on stderr otherwise.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if len(os.Args) < 2 {
		fail("usage: tlogclient check|witness ...")
	}
	var err error
	switch os.Args[1] {
	case "check":
		err = check(os.Args[2:])
	case "witness":
		err = witness(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	case "proofs":
		err = proofs(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fail(err.Error())
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "tlogclient:", message)
	os.Exit(1)
}

// checkpoint is a C2SP tlog-checkpoint body: origin, decimal size, base64 root, extensions.
type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

func parseCheckpoint(text string) (checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return checkpoint{}, errors.New("a checkpoint body has at least three lines, each ended by a newline")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || (len(lines[1]) > 1 && lines[1][0] == '0') {
		return checkpoint{}, fmt.Errorf("bad tree size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return checkpoint{}, fmt.Errorf("bad root hash %q", lines[2])
	}
	var c checkpoint
	c.origin, c.size = lines[0], size
	copy(c.root[:], root)
	return c, nil
}

// openCheckpoint verifies the log's signature with x/mod's note package and parses the body.
func openCheckpoint(signed []byte, logKey string) (*note.Note, checkpoint, error) {
	verifier, err := note.NewVerifier(logKey)
	if err != nil {
		return nil, checkpoint{}, fmt.Errorf("log key: %v", err)
	}
	n, err := note.Open(signed, note.VerifierList(verifier))
	if err != nil {
		return nil, checkpoint{}, fmt.Errorf("checkpoint signature: %v", err)
	}
	c, err := parseCheckpoint(n.Text)
	if err != nil {
		return nil, checkpoint{}, err
	}
	if c.origin != verifier.Name() {
		return nil, checkpoint{}, fmt.Errorf("origin %q is not the key's name %q", c.origin, verifier.Name())
	}
	return n, c, nil
}

// cosigner is a c2sp.org/signed-note verifier key of type 0x04 (cosignature/v1).
type cosigner struct {
	name string
	id   uint32
	key  ed25519.PublicKey
}

func parseCosigner(vkey string) (cosigner, error) {
	parts := strings.SplitN(vkey, "+", 3) // base64 key data may hold '+' too
	if len(parts) != 3 {
		return cosigner{}, fmt.Errorf("witness key %q is not name+id+key", vkey)
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 0x04 {
		return cosigner{}, fmt.Errorf("witness key %q is not a 0x04 Ed25519 key", vkey)
	}
	id := sha256.Sum256(append([]byte(parts[0]+"\n"), raw...))
	c := cosigner{name: parts[0], id: binary.BigEndian.Uint32(id[:4]), key: ed25519.PublicKey(raw[1:])}
	if fmt.Sprintf("%08x", c.id) != parts[1] {
		return cosigner{}, fmt.Errorf("witness key %q: key ID %s, computed %08x", vkey, parts[1], c.id)
	}
	return c, nil
}

// verifyCosignature checks a cosignature/v1 signature (without its 4-byte key ID) over text,
// returning its timestamp.
func (c cosigner) verifyCosignature(text string, sig []byte) (uint64, error) {
	if len(sig) != 8+ed25519.SignatureSize {
		return 0, errors.New("a cosignature is 8 bytes of time and a 64-byte signature")
	}
	timestamp := binary.BigEndian.Uint64(sig[:8])
	message := fmt.Sprintf("cosignature/v1\ntime %d\n%s", timestamp, text)
	if !ed25519.Verify(c.key, []byte(message), sig[8:]) {
		return 0, fmt.Errorf("the cosignature by %s does not verify", c.name)
	}
	return timestamp, nil
}

// cosignedBy counts the witnesses among keys whose cosignature on n verifies.
func cosignedBy(n *note.Note, keys []cosigner) (int, error) {
	count := 0
	for _, k := range keys {
		for _, s := range n.UnverifiedSigs {
			if s.Name != k.name || s.Hash != k.id {
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(s.Base64)
			if err != nil {
				return 0, err
			}
			if _, err := k.verifyCosignature(n.Text, raw[4:]); err != nil {
				return 0, err
			}
			count++
			break
		}
	}
	return count, nil
}

func get(url string) (int, []byte, error) {
	response, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	return response.StatusCode, body, err
}

// servedTiles reads hash tiles from a tlog-tiles server: x/mod names a tile tile/8/L/N, the
// C2SP path leaves out the height (always 8).
type servedTiles struct {
	base  string
	reads int
}

func (s *servedTiles) Height() int { return 8 }

func (s *servedTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	for i, t := range tiles {
		path := "tile/" + strings.TrimPrefix(t.Path(), "tile/8/")
		status, body, err := get(s.base + "/" + path)
		if err != nil {
			return nil, err
		}
		if status != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %s", path, status, body)
		}
		if len(body) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("GET %s: %d bytes, want %d", path, len(body), t.W*tlog.HashSize)
		}
		data[i] = body
		s.reads++
	}
	return data, nil
}

func (s *servedTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// entryBundlePath is the C2SP path of entry bundle n holding width entries.
func entryBundlePath(n int64, width int) string {
	t := tlog.Tile{H: 8, L: 0, N: n, W: width}
	return "tile/entries/" + strings.TrimPrefix(t.Path(), "tile/8/0/")
}

// parseBundle splits an entry bundle: each entry is a big-endian uint16 length and its bytes.
func parseBundle(body []byte) ([][]byte, error) {
	var entries [][]byte
	for len(body) > 0 {
		if len(body) < 2 {
			return nil, errors.New("an entry bundle ends inside a length")
		}
		length := int(binary.BigEndian.Uint16(body))
		if len(body) < 2+length {
			return nil, errors.New("an entry bundle ends inside an entry")
		}
		entries = append(entries, body[2:2+length])
		body = body[2+length:]
	}
	return entries, nil
}

func check(args []string) error {
	flags := flag.NewFlagSet("check", flag.ContinueOnError)
	base := flags.String("log", "", "tlog-tiles server URL")
	logKey := flags.String("key", "", "the log's verifier key")
	var witnessKeys listFlag
	flags.Var(&witnessKeys, "witness-key", "a witness's cosigner key (repeatable)")
	quorum := flags.Int("quorum", -1, "cosignatures needed (default: every witness key)")
	oldPath := flags.String("old", "", "a checkpoint seen before: prove consistency from it")
	savePath := flags.String("save", "", "write the served checkpoint here")
	if err := flags.Parse(args); err != nil {
		return err
	}
	status, signed, err := get(*base + "/checkpoint")
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("GET checkpoint: %d %v", status, err)
	}
	n, cp, err := openCheckpoint(signed, *logKey)
	if err != nil {
		return err
	}
	var cosigners []cosigner
	for _, k := range witnessKeys {
		c, err := parseCosigner(k)
		if err != nil {
			return err
		}
		cosigners = append(cosigners, c)
	}
	if *quorum < 0 {
		*quorum = len(cosigners)
	}
	cosigned, err := cosignedBy(n, cosigners)
	if err != nil {
		return err
	}
	if cosigned < *quorum {
		return fmt.Errorf("%d of %d witnesses cosigned, quorum %d", cosigned, len(cosigners), *quorum)
	}

	tiles := &servedTiles{base: *base}
	hashes := tlog.TileHashReader(tlog.Tree{N: cp.size, Hash: cp.root}, tiles)
	root, err := tlog.TreeHash(cp.size, hashes)
	if err != nil {
		return fmt.Errorf("tree hash from the tiles: %v", err)
	}
	if root != cp.root {
		return fmt.Errorf("the tiles hash to %v, the checkpoint says %v", root, cp.root)
	}

	// Every entry bundle: each entry's RFC 6962 leaf hash is the leaf the tiles hold.
	entries, purged := 0, 0
	for bundle := int64(0); bundle*256 < cp.size; bundle++ {
		width := int(cp.size - bundle*256)
		if width > 256 {
			width = 256
		}
		path := entryBundlePath(bundle, width)
		status, body, err := get(*base + "/" + path)
		if err != nil {
			return err
		}
		if status == http.StatusGone {
			purged++
			continue
		}
		if status != http.StatusOK {
			return fmt.Errorf("GET %s: %d %s", path, status, body)
		}
		bundleEntries, err := parseBundle(body)
		if err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
		if len(bundleEntries) != width {
			return fmt.Errorf("%s: %d entries, want %d", path, len(bundleEntries), width)
		}
		indexes := make([]int64, width)
		for i := range indexes {
			indexes[i] = tlog.StoredHashIndex(0, bundle*256+int64(i))
		}
		leaves, err := hashes.ReadHashes(indexes)
		if err != nil {
			return err
		}
		for i, entry := range bundleEntries {
			if tlog.RecordHash(entry) != leaves[i] {
				return fmt.Errorf("entry %d does not hash to its leaf", bundle*256+int64(i))
			}
		}
		entries += width
	}

	// Inclusion proofs for the first, last and a spread of leaves.
	proofs := 0
	for _, leaf := range []int64{0, cp.size / 3, cp.size / 2, cp.size - 2, cp.size - 1} {
		if leaf < 0 || leaf >= cp.size {
			continue
		}
		leafHash, err := hashes.ReadHashes([]int64{tlog.StoredHashIndex(0, leaf)})
		if err != nil {
			return err
		}
		proof, err := tlog.ProveRecord(cp.size, leaf, hashes)
		if err != nil {
			return err
		}
		if err := tlog.CheckRecord(proof, cp.size, cp.root, leaf, leafHash[0]); err != nil {
			return fmt.Errorf("inclusion of leaf %d: %v", leaf, err)
		}
		proofs++
	}

	consistency := ""
	if *oldPath != "" {
		oldSigned, err := os.ReadFile(*oldPath)
		if err != nil {
			return err
		}
		_, old, err := openCheckpoint(oldSigned, *logKey)
		if err != nil {
			return fmt.Errorf("old checkpoint: %v", err)
		}
		if old.size > cp.size {
			return fmt.Errorf("rolled back: the served tree has %d leaves, %d were seen before", cp.size, old.size)
		}
		proof, err := tlog.ProveTree(cp.size, old.size, hashes)
		if err != nil {
			return err
		}
		if err := tlog.CheckTree(proof, cp.size, cp.root, old.size, old.root); err != nil {
			return fmt.Errorf("not consistent with the checkpoint of size %d: %v", old.size, err)
		}
		consistency = fmt.Sprintf(", consistent with size %d (%d-hash proof)", old.size, len(proof))
	}
	if *savePath != "" {
		if err := os.WriteFile(*savePath, signed, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("ok: %s size %d, %d cosignatures, root from %d tiles, %d entries hashed to their leaves (%d bundles purged), %d inclusion proofs%s\n",
		cp.origin, cp.size, cosigned, tiles.reads, entries, purged, proofs, consistency)
	return nil
}

// addCheckpoint posts a c2sp.org/tlog-witness add-checkpoint request.
func addCheckpoint(url string, body []byte) (int, string, []byte, error) {
	response, err := http.Post(url+"/add-checkpoint", "", bytes.NewReader(body))
	if err != nil {
		return 0, "", nil, err
	}
	defer response.Body.Close()
	answer, err := io.ReadAll(response.Body)
	return response.StatusCode, response.Header.Get("Content-Type"), answer, err
}

func requestBody(old int64, proof tlog.TreeProof, signed []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		fmt.Fprintf(&b, "%s\n", base64.StdEncoding.EncodeToString(h[:]))
	}
	b.WriteString("\n")
	b.Write(signed)
	return b.Bytes()
}

func witness(args []string) error {
	flags := flag.NewFlagSet("witness", flag.ContinueOnError)
	base := flags.String("log", "", "tlog-tiles server URL")
	logKey := flags.String("key", "", "the log's verifier key")
	witnessURL := flags.String("witness", "", "the witness's URL")
	witnessKey := flags.String("witness-key", "", "the witness's cosigner key")
	old := flags.Int64("old", 0, "the size the witness last cosigned")
	if err := flags.Parse(args); err != nil {
		return err
	}
	status, signed, err := get(*base + "/checkpoint")
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("GET checkpoint: %d %v", status, err)
	}
	_, cp, err := openCheckpoint(signed, *logKey)
	if err != nil {
		return err
	}
	w, err := parseCosigner(*witnessKey)
	if err != nil {
		return err
	}
	if *old > cp.size {
		return fmt.Errorf("-old %d is past the checkpoint's size %d", *old, cp.size)
	}
	hashes := tlog.TileHashReader(tlog.Tree{N: cp.size, Hash: cp.root}, &servedTiles{base: *base})
	var proof tlog.TreeProof // from size 0 the proof is empty (x/mod proves from size 1 on)
	if *old > 0 {
		if proof, err = tlog.ProveTree(cp.size, *old, hashes); err != nil {
			return err
		}
	}

	// What the spec says a witness must refuse, before the request it must accept.
	type refusal struct {
		what   string
		body   []byte
		status int
	}
	noBlankLine := bytes.Replace(requestBody(*old, proof, signed), []byte("\n\n"), []byte("\n"), 1)
	otherOrigin := bytes.Replace(signed, []byte(cp.origin+"\n"), []byte("other."+cp.origin+"\n"), 1)
	// One base64 letter of the log's own signature changed for another letter (not one of
	// the key ID's, so the line still names the log's key).
	badSignature := append([]byte(nil), signed...)
	logLine := []byte("\n\u2014 " + cp.origin + " ")
	sigAt := bytes.LastIndex(badSignature, logLine)
	if sigAt < 0 {
		return errors.New("no signature line by the log")
	}
	letter := sigAt + len(logLine) + 20
	if badSignature[letter] == 'A' {
		badSignature[letter] = 'B'
	} else {
		badSignature[letter] = 'A'
	}
	refusals := []refusal{
		{"no empty line before the checkpoint", noBlankLine, http.StatusBadRequest},
		{"an old size above the checkpoint's", requestBody(cp.size+1, nil, signed), http.StatusBadRequest},
		{"an origin the witness does not know", requestBody(*old, proof, otherOrigin), http.StatusNotFound},
		{"a signature that does not verify", requestBody(*old, proof, badSignature), http.StatusForbidden},
	}
	if *old != cp.size {
		refusals = append(refusals, refusal{"an old size the witness did not cosign", requestBody(*old+1, nil, signed), http.StatusConflict})
	}
	if len(proof) > 0 {
		broken := append(tlog.TreeProof(nil), proof...)
		broken[0][0] ^= 0x01
		refusals = append(refusals, refusal{"a consistency proof that does not verify", requestBody(*old, broken, signed), http.StatusUnprocessableEntity})
	}
	for _, r := range refusals {
		status, contentType, answer, err := addCheckpoint(*witnessURL, r.body)
		if err != nil {
			return err
		}
		if status != r.status {
			return fmt.Errorf("%s: status %d (%s), want %d", r.what, status, answer, r.status)
		}
		if status == http.StatusConflict {
			if contentType != "text/x.tlog.size" || string(answer) != fmt.Sprintf("%d\n", *old) {
				return fmt.Errorf("409 answered %q as %q, want the cosigned size %d as text/x.tlog.size", answer, contentType, *old)
			}
		}
	}

	status, _, answer, err := addCheckpoint(*witnessURL, requestBody(*old, proof, signed))
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("add-checkpoint from size %d: status %d %s", *old, status, answer)
	}
	// The answer is one signature line: "— <name> <base64(key ID ‖ time ‖ signature)>\n".
	line := strings.TrimSuffix(string(answer), "\n")
	prefix := "\u2014 " + w.name + " "
	if !strings.HasPrefix(line, prefix) || strings.Contains(line, "\n") {
		return fmt.Errorf("the answer is not one signature line by %s: %q", w.name, answer)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(line, prefix))
	if err != nil || len(raw) < 4 || binary.BigEndian.Uint32(raw) != w.id {
		return fmt.Errorf("the signature line does not carry the witness's key ID: %q", answer)
	}
	n, err := note.Open(signed, nil)
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		n = unverified.Note
	} else if err != nil {
		return err
	}
	timestamp, err := w.verifyCosignature(n.Text, raw[4:])
	if err != nil {
		return err
	}
	if age := time.Since(time.Unix(int64(timestamp), 0)); age < -time.Minute || age > time.Hour {
		return fmt.Errorf("the cosignature's time is %v from now", age)
	}
	fmt.Printf("ok: %s cosigned %s size %d from size %d (%d-hash proof) after refusing %d bad requests\n",
		w.name, cp.origin, cp.size, *old, len(proof), len(refusals))
	return nil
}

func load(args []string) error {
	flags := flag.NewFlagSet("load", flag.ContinueOnError)
	base := flags.String("log", "", "tlog-tiles server URL")
	logKey := flags.String("key", "", "the log's verifier key")
	requests := flags.Int("requests", 20000, "requests in all")
	concurrency := flags.Int("concurrency", 1000, "connections sending at once")
	slow := flags.Int("slow", 200, "connections held open with a half-sent request")
	if err := flags.Parse(args); err != nil {
		return err
	}
	status, signed, err := get(*base + "/checkpoint")
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("GET checkpoint: %d %v", status, err)
	}
	_, cp, err := openCheckpoint(signed, *logKey)
	if err != nil {
		return err
	}
	// What each path must answer: the bytes of every tile and bundle the checkpoint covers
	// (read once, one at a time, and the root recomputed from them), then 404s and 400s.
	type expected struct {
		path   string
		status int
		body   []byte
	}
	var paths []expected
	tiles := &servedTiles{base: *base}
	if root, err := tlog.TreeHash(cp.size, tlog.TileHashReader(tlog.Tree{N: cp.size, Hash: cp.root}, tiles)); err != nil || root != cp.root {
		return fmt.Errorf("the served tiles do not hash to the checkpoint's root: %v", err)
	}
	for level := 0; cp.size>>(8*level) > 0; level++ {
		leaves := cp.size >> (8 * level)
		for n := int64(0); n*256 < leaves; n++ {
			width := leaves - n*256
			if width > 256 {
				width = 256
			}
			t := tlog.Tile{H: 8, L: level, N: n, W: int(width)}
			paths = append(paths, expected{path: "tile/" + strings.TrimPrefix(t.Path(), "tile/8/"), status: 200})
			if level == 0 {
				paths = append(paths, expected{path: entryBundlePath(n, int(width)), status: 200})
			}
		}
	}
	for i := range paths {
		status, body, err := get(*base + "/" + paths[i].path)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("GET %s: %d %v", paths[i].path, status, err)
		}
		paths[i].body = body
	}
	beyond := tlog.Tile{H: 8, L: 0, N: cp.size/256 + 1, W: 256}
	paths = append(paths,
		expected{path: "tile/" + strings.TrimPrefix(beyond.Path(), "tile/8/"), status: 404},
		expected{path: entryBundlePath(cp.size/256+7, 256), status: 404},
		expected{path: "tile/0/x000/001", status: 400},
		expected{path: "tile/0/000.p/0", status: 400},
		expected{path: "tile/9999999999999999999999/000", status: 400},
		expected{path: "tile/entries/%ff%00", status: 400},
	)

	// Slow clients: a request line and no end of headers, held until the load is over.
	host := strings.TrimPrefix(*base, "http://")
	var held []net.Conn
	for i := 0; i < *slow; i++ {
		c, err := net.Dial("tcp", host)
		if err != nil {
			return fmt.Errorf("slow client %d: %v", i, err)
		}
		fmt.Fprintf(c, "GET /tile/0/000 HTTP/1.1\r\nHost: %s\r\n", host)
		held = append(held, c)
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *concurrency, MaxConnsPerHost: *concurrency}, Timeout: 60 * time.Second}
	var next, wrong, answered int64
	var firstWrong atomic.Value
	start := time.Now()
	var group sync.WaitGroup
	for w := 0; w < *concurrency; w++ {
		group.Add(1)
		go func() {
			defer group.Done()
			for {
				i := atomic.AddInt64(&next, 1) - 1
				if i >= int64(*requests) {
					return
				}
				want := paths[(i*7919)%int64(len(paths))]
				response, err := client.Get(*base + "/" + want.path)
				if err != nil {
					atomic.AddInt64(&wrong, 1)
					firstWrong.CompareAndSwap(nil, fmt.Sprintf("GET %s: %v", want.path, err))
					continue
				}
				body, err := io.ReadAll(response.Body)
				response.Body.Close()
				if err != nil || response.StatusCode != want.status || (want.status == 200 && !bytes.Equal(body, want.body)) {
					atomic.AddInt64(&wrong, 1)
					firstWrong.CompareAndSwap(nil, fmt.Sprintf("GET %s: %d (%d bytes), want %d", want.path, response.StatusCode, len(body), want.status))
					continue
				}
				atomic.AddInt64(&answered, 1)
			}
		}()
	}
	group.Wait()
	elapsed := time.Since(start)
	for _, c := range held {
		c.Close()
	}
	if wrong > 0 {
		return fmt.Errorf("%d of %d answers wrong or missing, first: %v", wrong, *requests, firstWrong.Load())
	}
	if status, _, err := get(*base + "/checkpoint"); err != nil || status != http.StatusOK {
		return fmt.Errorf("after the load, GET checkpoint: %d %v", status, err)
	}
	fmt.Printf("ok: %d requests over %d paths from %d connections at once, %d slow clients held open, every answer right, %.1f s (%.0f requests/s)\n",
		answered, len(paths), *concurrency, *slow, elapsed.Seconds(), float64(answered)/elapsed.Seconds())
	return nil
}

// steleProof is what `stele prove --json` prints: an inclusion proof (index, tree_size, root)
// or a consistency proof (from, to); hashes in hex.
type steleProof struct {
	Index    *int64   `json:"index"`
	TreeSize int64    `json:"tree_size"`
	From     int64    `json:"from"`
	To       int64    `json:"to"`
	Proof    []string `json:"proof"`
}

func readProof(path string) (steleProof, []tlog.Hash, error) {
	var p steleProof
	raw, err := os.ReadFile(path)
	if err != nil {
		return p, nil, err
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return p, nil, fmt.Errorf("%s: %v", path, err)
	}
	var hashes []tlog.Hash
	for _, h := range p.Proof {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != tlog.HashSize {
			return p, nil, fmt.Errorf("%s: bad hash %q", path, h)
		}
		var hash tlog.Hash
		copy(hash[:], b)
		hashes = append(hashes, hash)
	}
	return p, hashes, nil
}

func proofs(args []string) error {
	flags := flag.NewFlagSet("proofs", flag.ContinueOnError)
	base := flags.String("log", "", "tlog-tiles server URL")
	logKey := flags.String("key", "", "the log's verifier key")
	inclusionPath := flags.String("inclusion", "", "stele prove --index N --tree-size S --json")
	consistencyPath := flags.String("consistency", "", "stele prove --consistency OLD --to NEW --json")
	oldPath := flags.String("old", "", "the checkpoint of the consistency proof's old size")
	if err := flags.Parse(args); err != nil {
		return err
	}
	status, signed, err := get(*base + "/checkpoint")
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("GET checkpoint: %d %v", status, err)
	}
	_, cp, err := openCheckpoint(signed, *logKey)
	if err != nil {
		return err
	}
	hashes := tlog.TileHashReader(tlog.Tree{N: cp.size, Hash: cp.root}, &servedTiles{base: *base})
	checked := 0

	p, proof, err := readProof(*inclusionPath)
	if err != nil {
		return err
	}
	if p.Index == nil || p.TreeSize != cp.size {
		return fmt.Errorf("the inclusion proof is for tree size %d, the served checkpoint's is %d", p.TreeSize, cp.size)
	}
	leaf, err := hashes.ReadHashes([]int64{tlog.StoredHashIndex(0, *p.Index)})
	if err != nil {
		return err
	}
	if err := tlog.CheckRecord(tlog.RecordProof(proof), cp.size, cp.root, *p.Index, leaf[0]); err != nil {
		return fmt.Errorf("Stele's inclusion proof of leaf %d: %v", *p.Index, err)
	}
	for i := range proof {
		altered := append([]tlog.Hash(nil), proof...)
		altered[i][0] ^= 0x01
		if tlog.CheckRecord(tlog.RecordProof(altered), cp.size, cp.root, *p.Index, leaf[0]) == nil {
			return fmt.Errorf("the inclusion proof still verifies with hash %d altered", i)
		}
	}
	checked++

	if *consistencyPath != "" {
		p, proof, err := readProof(*consistencyPath)
		if err != nil {
			return err
		}
		oldSigned, err := os.ReadFile(*oldPath)
		if err != nil {
			return err
		}
		_, old, err := openCheckpoint(oldSigned, *logKey)
		if err != nil {
			return err
		}
		if p.From != old.size || p.To != cp.size {
			return fmt.Errorf("the consistency proof is from %d to %d, the checkpoints are %d and %d", p.From, p.To, old.size, cp.size)
		}
		if err := tlog.CheckTree(tlog.TreeProof(proof), cp.size, cp.root, old.size, old.root); err != nil {
			return fmt.Errorf("Stele's consistency proof from %d to %d: %v", old.size, cp.size, err)
		}
		for i := range proof {
			altered := append([]tlog.Hash(nil), proof...)
			altered[i][0] ^= 0x01
			if tlog.CheckTree(tlog.TreeProof(altered), cp.size, cp.root, old.size, old.root) == nil {
				return fmt.Errorf("the consistency proof still verifies with hash %d altered", i)
			}
		}
		checked++
	}
	fmt.Printf("ok: %d proofs made by Stele verified by x/mod against %s size %d, and refused with any hash altered\n", checked, cp.origin, cp.size)
	return nil
}
