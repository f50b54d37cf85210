// CaptureStore: the capture format. (Being built.)
