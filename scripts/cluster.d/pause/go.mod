module s3csi.local/pause

go 1.26
