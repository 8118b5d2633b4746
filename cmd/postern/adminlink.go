package main

import (
	"fmt"
	"io"

	"postern.dev/postern/internal/server"
)

// adminLink is `postern admin-link`: a one-time link that signs the
// browser in to the web admin center as the server administrator. It asks
// the running server over the admin socket, which only the data
// directory's owner can open; the link works once, within ten minutes.
func adminLink(dataDir, configFile string, stdout, stderr io.Writer) int {
	loc := localOptions(dataDir, configFile, "", false)
	resp, err := server.SendAdmin(loc.data, server.AdminRequest{AdminLink: true})
	if err != nil {
		fmt.Fprintf(stderr, "postern admin-link: no server is running on %s (the link comes from the running server): %v\n", loc.data, err)
		return 1
	}
	if resp.Error != "" {
		fmt.Fprintln(stderr, "postern admin-link:", resp.Error)
		return 1
	}
	fmt.Fprint(stdout, resp.Output)
	return 0
}
