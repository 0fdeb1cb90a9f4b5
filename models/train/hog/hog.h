#ifdef __cplusplus
extern "C" {
#endif
void *hog_new();
void hog_free(void *p);
int hog_count(void *p, unsigned char *bgr, int w, int h, int step, double upscale, int stride);
#ifdef __cplusplus
}
#endif
