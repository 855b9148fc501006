package gen

import (
	"fmt"
	"strings"
)

// diffContext is the number of unchanged lines shown around each change, diff -u's
// default.
const diffContext = 3

// unifiedDiff returns the unified diff that turns old into new, or "" when they are
// equal. It prints what GNU diff -u --label from --label to prints for two files of that
// content: the header lines "--- from" and "+++ to" with no timestamps, then hunks with
// three lines of context, two changes sharing a hunk when at most six unchanged lines lie
// between them, and "\ No newline at end of file" after a last line that lacks one. A
// hunk header counts a range of one line as "N" and an empty range as "N,0", N being the
// line before it, as GNU diff does; patch relies on that for diffs against empty files.
//
// The labels are written as given. checkStatus passes "a/<path>" and "b/<path>", or
// /dev/null for a missing side, so that the output of taskgen -check applies with
// git apply or patch -p1 from the directory taskgen ran in.
//
// The edit script is a shortest one (the fewest lines deleted and inserted). When several
// are equally short, the one chosen may differ from GNU diff's, which also slides changes
// along runs of repeated lines; both turn old into new.
func unifiedDiff(from, to string, old, new []byte) string {
	if string(old) == string(new) {
		return ""
	}
	a, b := splitLines(string(old)), splitLines(string(new))
	changes := diffLines(a, b)
	var w strings.Builder
	fmt.Fprintf(&w, "--- %s\n+++ %s\n", from, to)
	for len(changes) > 0 {
		n := 1
		for n < len(changes) && changes[n].a0-changes[n-1].a1 <= 2*diffContext {
			n++
		}
		writeHunk(&w, a, b, changes[:n])
		changes = changes[n:]
	}
	return w.String()
}

// change is one block of an edit script: lines a[a0:a1] of the old text are replaced by
// lines b[b0:b1] of the new one. Either range may be empty, not both.
type change struct {
	a0, a1, b0, b1 int
}

// writeHunk writes one hunk covering changes, with their context.
func writeHunk(w *strings.Builder, a, b []string, changes []change) {
	first, last := changes[0], changes[len(changes)-1]
	// Between two changes the lines are equal and as many in both texts, so a context
	// line count taken in a holds in b as well.
	before := min(diffContext, first.a0)
	after := min(diffContext, len(a)-last.a1)
	a0, a1 := first.a0-before, last.a1+after
	b0, b1 := first.b0-before, last.b1+after
	fmt.Fprintf(w, "@@ -%s +%s @@\n", hunkRange(a0, a1), hunkRange(b0, b1))
	i := a0
	for _, c := range changes {
		for ; i < c.a0; i++ {
			writeLine(w, ' ', a[i])
		}
		for ; i < c.a1; i++ {
			writeLine(w, '-', a[i])
		}
		for _, line := range b[c.b0:c.b1] {
			writeLine(w, '+', line)
		}
	}
	for ; i < a1; i++ {
		writeLine(w, ' ', a[i])
	}
}

// hunkRange formats the 0-based half-open line range [lo, hi) of a hunk header as GNU
// diff does: "first,count", "first" for a single line, "lo,0" for an empty range.
func hunkRange(lo, hi int) string {
	switch hi - lo {
	case 0:
		return fmt.Sprintf("%d,0", lo)
	case 1:
		return fmt.Sprintf("%d", lo+1)
	}
	return fmt.Sprintf("%d,%d", lo+1, hi-lo)
}

// writeLine writes one line of a hunk; a line without its newline can only be the last
// of its text, and is marked as such.
func writeLine(w *strings.Builder, op byte, line string) {
	w.WriteByte(op)
	w.WriteString(line)
	if !strings.HasSuffix(line, "\n") {
		w.WriteString("\n\\ No newline at end of file\n")
	}
}

// splitLines splits s into lines, each with its newline; the last line has none when s
// does not end in one. Lines are compared with their newlines, so that a last line that
// gains or loses its newline is a changed line, as for diff.
func splitLines(s string) []string {
	var lines []string
	for s != "" {
		i := strings.IndexByte(s, '\n') + 1
		if i == 0 {
			i = len(s)
		}
		lines = append(lines, s[:i])
		s = s[i:]
	}
	return lines
}

// diffLines returns a shortest edit script from a to b, as changes in increasing order.
func diffLines(a, b []string) []change {
	// Lines are compared as small integers, one per distinct line.
	ids := map[string]int{}
	intern := func(lines []string) []int {
		out := make([]int, len(lines))
		for i, l := range lines {
			id, ok := ids[l]
			if !ok {
				id = len(ids)
				ids[l] = id
			}
			out[i] = id
		}
		return out
	}
	m := &myers{a: intern(a), b: intern(b), deleted: make([]bool, len(a)), inserted: make([]bool, len(b))}
	m.compare(0, len(a), 0, len(b))

	// The lines marked neither deleted nor inserted are a longest common subsequence:
	// the i-th unmarked line of a is the i-th unmarked line of b.
	var changes []change
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		if i < len(a) && j < len(b) && !m.deleted[i] && !m.inserted[j] {
			i, j = i+1, j+1
			continue
		}
		c := change{a0: i, b0: j}
		for i < len(a) && m.deleted[i] {
			i++
		}
		for j < len(b) && m.inserted[j] {
			j++
		}
		c.a1, c.b1 = i, j
		if c.a0 == c.a1 && c.b0 == c.b1 {
			panic("diff: the unchanged lines of the two texts do not pair up")
		}
		changes = append(changes, c)
	}
	return changes
}

// myers computes a shortest edit script with the linear-space variant of E. Myers, "An
// O(ND) difference algorithm and its variations" (Algorithmica, 1986): find a point
// through which a shortest path of the edit graph passes, searching from both ends at
// once, and recurse on the two halves. Time O((N+M)D), space O(N+M) for texts of N and
// M lines that differ in D lines: a generated file is thousands of lines, and a table of
// N×M cells would not do.
//
// In the edit graph, point (x, y) stands for having consumed x lines of a and y of b;
// a move right deletes a line of a, a move down inserts a line of b, and a diagonal move
// (free) keeps a line equal in both. Diagonal k is the set of points with x-y = k.
type myers struct {
	a, b              []int
	deleted, inserted []bool // the edit script: lines of a to delete, lines of b to insert
}

// compare marks a shortest edit script from a[aLo:aHi] to b[bLo:bHi].
func (m *myers) compare(aLo, aHi, bLo, bHi int) {
	for aLo < aHi && bLo < bHi && m.a[aLo] == m.b[bLo] {
		aLo, bLo = aLo+1, bLo+1
	}
	for aLo < aHi && bLo < bHi && m.a[aHi-1] == m.b[bHi-1] {
		aHi, bHi = aHi-1, bHi-1
	}
	switch {
	case aLo == aHi:
		for j := bLo; j < bHi; j++ {
			m.inserted[j] = true
		}
	case bLo == bHi:
		for i := aLo; i < aHi; i++ {
			m.deleted[i] = true
		}
	default:
		// Both ranges are non-empty and differ in their first and in their last line,
		// so at least two edits separate them (one edit alone would leave the first or
		// the last lines equal). split then returns a point strictly between the
		// corners, with at least one edit on either side, so both halves are smaller.
		x, y := m.split(aLo, aHi, bLo, bHi)
		m.compare(aLo, x, bLo, y)
		m.compare(x, aHi, y, bHi)
	}
}

// split returns a point (x, y), aLo <= x <= aHi and bLo <= y <= bHi, on a shortest path
// from (aLo, bLo) to (aHi, bHi), with ceil(D/2) edits before it and floor(D/2) after,
// D being the length of such a path.
//
// For d = 0, 1, 2, ... it extends the furthest-reaching paths of d edits forward from
// (aLo, bLo), one per diagonal, then backward from (aHi, bHi): fwd[k] is the largest x
// of a point of diagonal k reached in at most d edits, bwd[k] the smallest x of a point
// from which (aHi, bHi) is reached in at most d. Every point of diagonal k before fwd[k]
// is reachable in at most d edits too: a path to fwd[k] leaves the rectangle spanned by
// (aLo, bLo) and that point through its right or bottom side, and the edits it spends
// after that are at least the steps from there to the point. Likewise backward. So once
// fwd[k] >= bwd[k] on some diagonal, a path through the forward point costs at most the
// edits spent on both sides; and the first time that happens, in the order forward d,
// backward d, forward d+1, ..., is at the length D of a shortest path, because a
// shortest path's point after its first ceil(D/2) edits shows the overlap at step D.
// D and N-M are both even or both odd, so only the pass of that parity checks.
func (m *myers) split(aLo, aHi, bLo, bHi int) (int, int) {
	n, mm := aHi-aLo, bHi-bLo
	delta := n - mm
	maxD := (n + mm + 1) / 2
	// Diagonals run from -maxD to delta+maxD at most; off shifts them to indices.
	off := maxD + max(delta, -delta) + 1
	fwd := make([]int, 2*off+1)
	bwd := make([]int, 2*off+1)
	for d := 0; d <= maxD; d++ {
		// Forward. A point of diagonal k reached in d edits is one edit away from a
		// point of diagonal k+1 or k-1 reached in d-1 (those of -(d-1) <= k <= d-1),
		// then as many equal lines as follow. Of those points, the furthest from which
		// the edit stays inside the graph is taken.
		for k := -d; k <= d; k += 2 {
			x := unreached
			if d == 0 {
				x = 0
			} else {
				if k < d && fwd[off+k+1] != unreached {
					// Down (insert a line of b), from the last point of diagonal k+1
					// above the bottom edge.
					if from := min(fwd[off+k+1], mm+k); from >= max(0, k+1) {
						x = from
					}
				}
				if k > -d && fwd[off+k-1] != unreached {
					// Right (delete a line of a), from the last point of diagonal k-1
					// left of the right edge.
					if from := min(fwd[off+k-1], n-1); from >= max(0, k-1) && from+1 > x {
						x = from + 1
					}
				}
			}
			if x == unreached {
				fwd[off+k] = unreached
				continue
			}
			y := x - k
			for x < n && y < mm && m.a[aLo+x] == m.b[bLo+y] {
				x, y = x+1, y+1
			}
			fwd[off+k] = x
			// The backward pass of d-1 edits covers delta-(d-1) <= k <= delta+(d-1).
			if delta%2 != 0 && d > 0 && k >= delta-(d-1) && k <= delta+(d-1) && bwd[off+k] != unreached && x >= bwd[off+k] {
				return aLo + x, bLo + y
			}
		}
		// Backward, the mirror image: up and left from (n, mm).
		for k := delta - d; k <= delta+d; k += 2 {
			x := unreached
			if d == 0 {
				x = n
			} else {
				if k > delta-d && bwd[off+k-1] != unreached {
					// Up, from the first point of diagonal k-1 below the top edge.
					if from := max(bwd[off+k-1], k); from <= min(n, mm+k-1) {
						x = from
					}
				}
				if k < delta+d && bwd[off+k+1] != unreached {
					// Left, from the first point of diagonal k+1 right of the left edge.
					if from := max(bwd[off+k+1], 1, k+1); from <= min(n, mm+k+1) && (x == unreached || from-1 < x) {
						x = from - 1
					}
				}
			}
			if x == unreached {
				bwd[off+k] = unreached
				continue
			}
			y := x - k
			for x > 0 && y > 0 && m.a[aLo+x-1] == m.b[bLo+y-1] {
				x, y = x-1, y-1
			}
			bwd[off+k] = x
			// The forward pass of d edits covers -d <= k <= d.
			if delta%2 == 0 && k >= -d && k <= d && fwd[off+k] != unreached && fwd[off+k] >= x {
				return aLo + x, bLo + y
			}
		}
	}
	panic("diff: no shortest path found")
}

// unreached marks a diagonal that no path of the edits counted so far reaches.
const unreached = -1
