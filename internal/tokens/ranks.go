package tokens

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"path"

	"github.com/pkoukk/tiktoken-go-loader/assets"
)

// loadRanks reads the o200k_base ranks from the file tiktoken-go's offline
// loader embeds, into the map its LoadTiktokenBpe returns (the same
// entries: TestLoadRanksMatchesTheLoader), at a fraction of its cost: the
// loader splits the file into strings and decodes each token into a string
// of its own (430k allocations, about 200 ms of CPU on the 2-core machine),
// which every worker process paid before its first prompt. Here the tokens
// are decoded into one buffer and the keys are slices of one string.
func loadRanks(file string) (map[string]int, error) {
	name := path.Base(file)
	data, err := assets.Assets.ReadFile(name)
	if err != nil {
		return nil, err
	}
	lines := bytes.Count(data, []byte{'\n'}) + 1
	type entry struct{ off, end, rank int }
	entries := make([]entry, 0, lines)
	buf := make([]byte, 0, base64.StdEncoding.DecodedLen(len(data)))
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		if len(line) == 0 {
			continue
		}
		tok, num, ok := bytes.Cut(line, []byte{' '})
		if !ok || len(num) == 0 {
			return nil, fmt.Errorf("%s:%d: want a base64 token, a space and a rank", name, n)
		}
		off := len(buf)
		if buf, err = base64.StdEncoding.AppendDecode(buf, tok); err != nil {
			return nil, fmt.Errorf("%s:%d: token: %w", name, n, err)
		}
		rank := 0
		for _, c := range num {
			if c < '0' || c > '9' || rank > 1<<30 {
				return nil, fmt.Errorf("%s:%d: rank %q is not a number", name, n, num)
			}
			rank = rank*10 + int(c-'0')
		}
		entries = append(entries, entry{off, len(buf), rank})
	}
	all := string(buf)
	ranks := make(map[string]int, len(entries))
	for _, e := range entries {
		ranks[all[e.off:e.end]] = e.rank
	}
	return ranks, nil
}
