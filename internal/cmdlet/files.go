package cmdlet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FileSystem is where the shell's file cmdlets (Get-Content, Import-Csv,
// Export-Csv, Out-File, Set-Content, Add-Content, > and >>) read and
// write. Paths arrive absolute, resolved against Runner.Dir.
//
// Files are read and written with the rights of whoever started the
// shell, never the server's on a remote caller's behalf: the CLI's local
// session uses this process's own file system; the admin socket, whose
// shell runs inside the server, sets a FileSystem that asks the CLI on
// the other end to do the file work (internal/server); the REST API sets
// NoFiles, so that no web caller ever makes the server read or write a
// file.
type FileSystem interface {
	ReadFile(path string) ([]byte, error)
	// WriteFile creates or truncates the file, or appends to it.
	WriteFile(path string, data []byte, append bool) error
}

// MaxFileSize caps what one file cmdlet reads or writes.
const MaxFileSize = 32 << 20

// ErrFileTooLarge is a file over MaxFileSize.
var ErrFileTooLarge = fmt.Errorf("the file is larger than %d MB, the most this shell reads or writes at once", MaxFileSize>>20)

// LocalFiles is this process's file system.
type LocalFiles struct{}

// ReadFile reads a regular file of at most MaxFileSize bytes.
func (LocalFiles) ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if fi.IsDir() {
		return nil, fmt.Errorf("'%s' is a directory", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err == nil && len(b) > MaxFileSize {
		return nil, ErrFileTooLarge
	}
	return b, err
}

// WriteFile writes data, creating the file with the umask's permissions.
func (LocalFiles) WriteFile(path string, data []byte, append bool) error {
	if len(data) > MaxFileSize {
		return ErrFileTooLarge
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if append {
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	f, err := os.OpenFile(path, flags, 0o666)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// files returns the file system the invocation may use.
func (inv *Invocation) fileSystem() (FileSystem, error) {
	if inv.noFiles {
		return nil, errNoFiles
	}
	if inv.files != nil {
		return inv.files, nil
	}
	return LocalFiles{}, nil
}

// readFile reads a file a cmdlet names, with PowerShell's error when it
// is missing.
func (inv *Invocation) readFile(p string) ([]byte, error) {
	fsys, err := inv.fileSystem()
	if err != nil {
		return nil, err
	}
	path, err := resolvePath(inv, p)
	if err != nil {
		return nil, err
	}
	b, err := fsys.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("Cannot find path '%s' because it does not exist.", p)
	case err != nil:
		return nil, fmt.Errorf("Cannot read '%s': %v", p, err)
	}
	return b, nil
}

// writeFile writes a file a cmdlet names.
func (inv *Invocation) writeFile(p string, data []byte, append bool) error {
	fsys, err := inv.fileSystem()
	if err != nil {
		return err
	}
	path, err := resolvePath(inv, p)
	if err != nil {
		return err
	}
	if err := fsys.WriteFile(path, data, append); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("Could not find a part of the path '%s'.", p)
		}
		return fmt.Errorf("Could not write '%s': %v", p, err)
	}
	return nil
}

// resolvePath takes a relative path from the shell's directory. A
// backslash separates directories too, as in PowerShell on Linux, so that
// ".\report.csv" and "$PSScriptRoot\users.csv" from Windows scripts work.
func resolvePath(inv *Invocation, p string) (string, error) {
	if inv.noFiles {
		return "", errNoFiles
	}
	if p == "" {
		return "", fmt.Errorf("Cannot bind argument to parameter 'Path' because it is an empty string.")
	}
	if len(p) >= 2 && p[1] == ':' && (p[0]|0x20 >= 'a' && p[0]|0x20 <= 'z') {
		return "", fmt.Errorf("Cannot find drive. A drive with the name '%c' does not exist.", p[0])
	}
	p = strings.ReplaceAll(p, `\`, "/")
	if filepath.IsAbs(p) || inv.Dir == "" {
		return filepath.Clean(p), nil
	}
	return filepath.Join(inv.Dir, p), nil
}

// redirectOutput is > file and >> file: Out-File with the output.
func (r *Runner) redirectOutput(ctx context.Context, rd *redirection, items []Value) error {
	v, err := r.eval(ctx, rd.path)
	if err != nil {
		return err
	}
	if v == nil {
		return nil // > $null discards
	}
	inv := &Invocation{Args: map[string]Value{}, Host: host{r}, Dir: r.Dir, noFiles: r.NoFiles, files: r.Files, runner: r}
	var b strings.Builder
	writeOutput(&b, items)
	if err := inv.writeFile(toString(v), []byte(b.String()), rd.append); err != nil {
		return &Error{Command: "Out-File", Err: err}
	}
	return nil
}
