package main

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/palid/palid/runtime/gguf"
	"github.com/palid/palid/runtime/spm"
)

// spmModelKey is the GGUF key that holds the whole SentencePiece model.
const spmModelKey = "palid.tokenizer.spm_model"

func init() {
	register("tokenize", "print the token ids of TEXT (as spm_encode --output_format=id)", func(args []string) error {
		return tokenize(args, os.Stdout)
	})
}

// tokenize runs "palid tokenize [--model DIR | --spm FILE] TEXT": the ids
// of TEXT on one line, space-separated, no EOS added.
func tokenize(args []string, out io.Writer) error {
	fs := newFlags("tokenize", "TEXT")
	modelDir := fs.String("model", "", "model directory `DIR` (reads the tokenizer from DIR/model.gguf)")
	spmFile := fs.String("spm", "", "SentencePiece model `FILE` (.model)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *modelDir != "" && *spmFile != "" {
		return badInputf("pass either --model or --spm, not both")
	}
	if fs.NArg() == 0 {
		return badInputf("missing TEXT (usage: palid tokenize [--model DIR | --spm FILE] TEXT)")
	}
	text := strings.Join(fs.Args(), " ")
	if strings.ContainsRune(text, '\n') {
		return badInputf("TEXT holds a newline; spm_encode reads one line at a time, tokenize one line per call")
	}
	m, err := loadTokenizer(*modelDir, *spmFile)
	if err != nil {
		return err
	}
	ids := m.Encode(text)
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(id))
	}
	b.WriteByte('\n')
	_, err = io.WriteString(out, b.String())
	return err
}

// loadTokenizer reads the SentencePiece model from a .model file, from a
// model directory's model.gguf, or from the bundled default model.
func loadTokenizer(dir, file string) (*spm.Model, error) {
	if file != "" {
		m, err := spm.Load(file)
		if err != nil {
			return nil, badInput(err)
		}
		return m, nil
	}
	if dir == "" {
		d, err := defaultModelDir()
		if err != nil {
			return nil, badInputf("no model: pass --model or --spm")
		}
		dir = d
	}
	path := filepath.Join(dir, "model.gguf")
	f, err := gguf.Open(path)
	if err != nil {
		return nil, badInput(err)
	}
	defer f.Close()
	data, err := f.Bytes(spmModelKey)
	if err != nil {
		return nil, badInputf("%s: %v", path, err)
	}
	m, err := spm.Parse(data)
	if err != nil {
		return nil, badInputf("%s: key %s: %v", path, spmModelKey, err)
	}
	return m, nil
}
