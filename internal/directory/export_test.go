package directory

// OnFold sets a function Current calls after installing each folded base.
func (c *Current) OnFold(f func()) {
	c.mu.Lock()
	c.folded = f
	c.mu.Unlock()
}
