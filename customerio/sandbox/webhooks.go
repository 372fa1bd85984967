package sandbox

// reportDelivery posts a delivery's reporting webhooks (none configured:
// nothing).
func (s *Server) reportDelivery(d Delivery) {}
