package channel

const DefaultMaxDedicated = 64
const DefaultWriteTimeout = writeTimeout

func (s *Server) HeldBytes() int64 { return 0 }
